package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"natter/shared/imerr"
	"natter/shared/subject"
)

// revoke publishes a session.revoked event the way the account domain does.
func revoke(t *testing.T, uid int64, sid string, at time.Time) {
	t.Helper()
	js, err := jetstream.New(env.NC)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]any{"user_id": uid, "session_id": sid, "at": at.UnixMilli()})
	if _, err := js.Publish(context.Background(), subject.EvtSessionRevoked, data); err != nil {
		t.Fatalf("publish revocation: %v", err)
	}
}

func TestSessionRevocation(t *testing.T) {
	f := newFixture(t, nil)
	uid := newUser()
	// Session ids are unique in real life; the event stream is shared by this package.
	revoked, kept, stale := "rev-a-"+strconv.FormatInt(uid, 10), "rev-b-"+strconv.FormatInt(uid, 10), "rev-c-"+strconv.FormatInt(uid, 10)
	status := func(f *fixture, sid string) int {
		s, _, _ := f.httpDo(t, "POST", "/api/v1/msg.send", f.token(t, uid, sid), "{}", nil)
		return s
	}
	if s := status(f, revoked); s != http.StatusOK {
		t.Fatalf("before revocation: %d", s)
	}

	// Live: an edge that is running applies the event within moments.
	revoke(t, uid, stale, time.Now().Add(-2*time.Hour)) // older than any token: ignored
	revoke(t, uid, revoked, time.Now())
	waitFor(t, "revocation applied", func() bool { return status(f, revoked) == http.StatusUnauthorized })
	if s := status(f, kept); s != http.StatusOK {
		t.Fatalf("another session of the user: %d", s)
	}
	if s := status(f, stale); s != http.StatusOK {
		t.Fatalf("revocation older than the token lifetime still applied: %d", s)
	}
	hdr := map[string]string{}
	for k, v := range wsHeaders {
		hdr[k] = v
	}
	if s, _, body := f.httpDo(t, "GET", "/ws", f.token(t, uid, revoked), "", hdr); s != http.StatusUnauthorized || errorCode(t, body) != imerr.Unauthorized {
		t.Fatalf("upgrade with a revoked session: %d %s", s, body)
	}

	// Replay: an edge started later learns it from the stream.
	later := newFixture(t, nil)
	waitFor(t, "revocation replayed", func() bool { return status(later, revoked) == http.StatusUnauthorized })
	if s := status(later, kept); s != http.StatusOK {
		t.Fatalf("replay refused another session: %d", s)
	}
}
