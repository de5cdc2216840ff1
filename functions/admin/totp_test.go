package admin

import (
	"encoding/base32"
	"testing"
	"time"
)

// TestTOTPVectors checks the RFC 6238 appendix B vectors (SHA-1, 8 digits there:
// the last 6 here) and the once-only, skew rules.
func TestTOTPVectors(t *testing.T) {
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	tests := []struct {
		unix int64
		want string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"},
	}
	for _, tt := range tests {
		got, err := totpCode(secret, uint64(tt.unix/30))
		if err != nil || got != tt.want {
			t.Errorf("at %d: %q %v, want %q", tt.unix, got, err, tt.want)
		}
	}
	now := time.Unix(1111111111, 0)
	if step := totpCheck(secret, "050471", now, 0); step != 1111111111/30 {
		t.Fatalf("check: step %d", step)
	}
	if step := totpCheck(secret, "050471", now, 1111111111/30); step != 0 {
		t.Fatal("a used step accepted again")
	}
	if step := totpCheck(secret, "050471", now.Add(2*time.Minute), 0); step != 0 {
		t.Fatal("a code 4 steps old accepted")
	}
}
