package main

import (
	"bytes"
	"os"
	"testing"

	"natter/shared/testenv"
)

// TestGeneratedIsCurrent fails when clients/ts/src/gen.ts is not what the op table
// and the wire types produce now: run `go run ./clients/sdkgen`.
func TestGeneratedIsCurrent(t *testing.T) {
	want, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := testenv.RepoFile(t, Out)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run `go run ./clients/sdkgen` and commit it", Out)
	}
	for _, s := range []string{`"msg.send": { service: "im-message", access: 'user'`, `"account.login": { service: "im-account", access: 'public'`,
		"export interface Message {", "  id: string;", "  edits?: number;", `"msg.new": MsgNew;`} {
		if !bytes.Contains(want, []byte(s)) {
			t.Errorf("generated file lacks %q", s)
		}
	}
	if bytes.Contains(want, []byte(`"session.connect"`)) {
		t.Error("generated file lists an internal op")
	}
}
