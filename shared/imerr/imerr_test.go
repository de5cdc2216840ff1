package imerr

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net"
	"syscall"
	"testing"
)

func TestFrom(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Code
	}{
		{"direct", New(Forbidden, "no"), Forbidden},
		{"wrapped", fmt.Errorf("ctx: %w", New(NotFound, "gone")), NotFound},
		{"plain", sql.ErrConnDone, Internal},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), Unavailable},
		{"store down", fmt.Errorf("store message: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), Unavailable},
		{"bad conn", fmt.Errorf("x: %w", driver.ErrBadConn), Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := From(tt.err).Code; got != tt.want {
				t.Fatalf("From(%v).Code = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
	if From(sql.ErrConnDone).Message != "internal error" {
		t.Fatal("internal errors must not leak their cause to clients")
	}
}

func TestHTTPStatusDistinct(t *testing.T) {
	seen := map[int]Code{}
	for _, c := range Codes {
		s := c.HTTPStatus()
		if prev, ok := seen[s]; ok {
			t.Fatalf("%s and %s share status %d", prev, c, s)
		}
		seen[s] = c
		if !c.Valid() {
			t.Fatalf("%s not valid", c)
		}
	}
	if Code("nope").Valid() {
		t.Fatal("unknown code reported valid")
	}
}
