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

// TestOpenAPIIsCurrent fails when docs/openapi.yaml is stale; clients/ts's
// openapi test validates the document against the OpenAPI 3.1 schema.
func TestOpenAPIIsCurrent(t *testing.T) {
	want, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(testenv.RepoFile(t, OpenAPIOut))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run `go run ./clients/sdkgen` and commit it", OpenAPIOut)
	}
	for _, s := range []string{"openapi: \"3.1.0\"", "  \"/api/v1/messages\":\n    post:\n      operationId: \"msg_send\"",
		"operationId: \"account_login\"", "\"/api/v1/social/groups/{group_id}/members/{user_id}\":"} {
		if !bytes.Contains(want, []byte(s)) {
			t.Errorf("openapi.yaml lacks %q", s)
		}
	}
}
