package friend_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"natter/functions/fntest"
	"natter/functions/friend"
	"natter/shared/bus"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/testenv"
)

// TestCanMessage walks the truth table friends × the recipient's messages setting ×
// blocks either way, setting each state up through the ops on one pair of users.
func TestCanMessage(t *testing.T) {
	e := testenv.Start(t)
	// rel is the worker's own cache (the friend ops forget in it before they
	// answer); other is another worker's, told by subject.EvtRelationsChanged.
	rel := friend.NewRelations(e.DB)
	fntest.Start(t, e, fntest.Options{Relations: rel})
	other := friend.NewRelations(e.DB)
	if err := other.Watch(t.Context(), e.NC); err != nil {
		t.Fatal(err)
	}
	from, _ := fntest.User(t, e, "sender", "s1")
	to, _ := fntest.User(t, e, "recipient", "r1")

	const (
		neutral = "you cannot message this user"
		unblock = "unblock this user first"
	)
	const (
		noBlock = iota
		fromBlocksTo
		toBlocksFrom
	)
	tests := []struct {
		friends  bool
		messages string
		block    int
		want     string // "" allowed, else the forbidden message
	}{
		{false, friend.Friends, noBlock, neutral},
		{false, friend.Friends, fromBlocksTo, unblock},
		{false, friend.Friends, toBlocksFrom, neutral},
		{false, friend.Everyone, noBlock, ""},
		{false, friend.Everyone, fromBlocksTo, unblock},
		{false, friend.Everyone, toBlocksFrom, neutral},
		{true, friend.Friends, noBlock, ""},
		{true, friend.Friends, fromBlocksTo, unblock},
		{true, friend.Friends, toBlocksFrom, neutral},
		{true, friend.Everyone, noBlock, ""},
		{true, friend.Everyone, fromBlocksTo, unblock},
		{true, friend.Everyone, toBlocksFrom, neutral},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("friends=%v/messages=%s/block=%d", tt.friends, tt.messages, tt.block)
		t.Run(name, func(t *testing.T) {
			fntest.Must[friend.Empty](t, e, "block.remove", from, friend.UserReq{UserID: to.UserID})
			fntest.Must[friend.Empty](t, e, "block.remove", to, friend.UserReq{UserID: from.UserID})
			if tt.friends {
				befriend(t, e, from, to)
			} else {
				fntest.Must[friend.Empty](t, e, "friend.delete", from, friend.UserReq{UserID: to.UserID})
			}
			msgs := tt.messages
			fntest.Must[friend.Privacy](t, e, "account.privacy.set", to, friend.PrivacySetReq{Messages: &msgs})
			switch tt.block {
			case fromBlocksTo:
				fntest.Must[friend.Empty](t, e, "block.add", from, friend.UserReq{UserID: to.UserID})
			case toBlocksFrom:
				fntest.Must[friend.Empty](t, e, "block.add", to, friend.UserReq{UserID: from.UserID})
			}

			err := rel.CanMessage(context.Background(), from.UserID, to.UserID)
			// Asked twice: the second answer comes from the cache, and matches.
			if again := rel.CanMessage(context.Background(), from.UserID, to.UserID); imerr.CodeOf(again) != imerr.CodeOf(err) {
				t.Fatalf("cached answer %v, first %v", again, err)
			}
			// Another worker agrees once the change events reach it.
			deadline := time.Now().Add(2 * time.Second)
			for {
				theirs := other.CanMessage(context.Background(), from.UserID, to.UserID)
				if imerr.CodeOf(theirs) == imerr.CodeOf(err) && (err == nil || imerr.From(theirs).Message == imerr.From(err).Message) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("other worker still says %v, want %v", theirs, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			// A missing user stays not_found whatever the state (never cached).
			fntest.WantCode(t, rel.CanMessage(context.Background(), from.UserID, 999999), imerr.NotFound)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CanMessage = %v, want allowed", err)
				}
				return
			}
			fntest.WantCode(t, err, imerr.Forbidden)
			if msg := imerr.From(err).Message; msg != tt.want {
				t.Fatalf("message %q, want %q", msg, tt.want)
			}
		})
	}
	fntest.WantCode(t, rel.CanMessage(context.Background(), from.UserID, 999999), imerr.NotFound)
}

// TestCanMessageCache shows that answers are cached, so a change made behind the
// friend domain's back (plain SQL) goes unseen until Forget, and that Forget
// drops every answer involving the user.
func TestCanMessageCache(t *testing.T) {
	e := testenv.Start(t)
	rel := friend.NewRelations(e.DB)
	fntest.Start(t, e, fntest.Options{Relations: rel})
	a, _ := fntest.User(t, e, "cache_a", "d")
	b, _ := fntest.User(t, e, "cache_b", "d")
	c, _ := fntest.User(t, e, "cache_c", "d")
	befriend(t, e, a, b)
	befriend(t, e, a, c)
	ctx := context.Background()
	for _, to := range []int64{b.UserID, c.UserID} {
		if err := rel.CanMessage(ctx, a.UserID, to); err != nil {
			t.Fatalf("friends: %v", err)
		}
	}
	for _, blocker := range []int64{b.UserID, c.UserID} {
		if _, err := e.DB.Exec("INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, NOW(3))", blocker, a.UserID); err != nil {
			t.Fatal(err)
		}
	}
	if err := rel.CanMessage(ctx, a.UserID, b.UserID); err != nil {
		t.Fatalf("cached answer changed without Forget: %v", err)
	}
	if err := rel.CanMessage(ctx, a.UserID, c.UserID); err != nil {
		t.Fatalf("cached answer changed without Forget: %v", err)
	}
	rel.Forget(a.UserID) // both pairs involve a
	fntest.WantCode(t, rel.CanMessage(ctx, a.UserID, b.UserID), imerr.Forbidden)
	fntest.WantCode(t, rel.CanMessage(ctx, a.UserID, c.UserID), imerr.Forbidden)
}

// TestCanMessageCacheResetOnReconnect: changes announced while a worker was cut
// off from NATS never reach it, so a reconnect forgets every cached answer.
func TestCanMessageCacheResetOnReconnect(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	a, _ := fntest.User(t, e, "recon_a", "d")
	b, _ := fntest.User(t, e, "recon_b", "d")
	befriend(t, e, a, b)
	nc, err := nats.Connect(e.NC.ConnectedUrl(), nats.ReconnectWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	rel := friend.NewRelations(e.DB)
	if err := rel.Watch(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
	reconnected := make(chan struct{}, 1)
	bus.OnReconnect(nc, func() { reconnected <- struct{}{} })
	ctx := context.Background()
	if err := rel.CanMessage(ctx, a.UserID, b.UserID); err != nil {
		t.Fatal(err)
	}
	// A block this worker hears nothing about.
	if _, err := e.DB.Exec("INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, NOW(3))", b.UserID, a.UserID); err != nil {
		t.Fatal(err)
	}
	if err := rel.CanMessage(ctx, a.UserID, b.UserID); err != nil {
		t.Fatalf("cached answer: %v", err)
	}
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("no reconnect")
	}
	fntest.WantCode(t, rel.CanMessage(ctx, a.UserID, b.UserID), imerr.Forbidden)
}

// BenchmarkCanMessage measures the send path's relation check: cached, and
// against MySQL (one prepared statement, five primary-key lookups, one round
// trip) when every call first forgets the pair.
func BenchmarkCanMessage(b *testing.B) {
	e := testenv.Start(b)
	fntest.Start(b, e, fntest.Options{})
	alice, _ := fntest.User(b, e, "alice", "a1")
	bob, _ := fntest.User(b, e, "bob", "b1")
	carol, _ := fntest.User(b, e, "carol", "c1")
	befriend(b, e, alice, bob)
	rel := friend.NewRelations(e.DB)
	ctx := context.Background()
	cases := []struct {
		name    string
		from    endpoint.Caller
		to      int64
		allowed bool
	}{
		{"friends", alice, bob.UserID, true},
		{"stranger", carol, bob.UserID, false},
		{"friends/uncached", alice, bob.UserID, true},
		{"stranger/uncached", carol, bob.UserID, false},
	}
	for _, bc := range cases {
		uncached := strings.HasSuffix(bc.name, "/uncached")
		check := func(b *testing.B) bool {
			if uncached {
				rel.Forget(bc.to)
			}
			err := rel.CanMessage(ctx, bc.from.UserID, bc.to)
			if (err == nil) != bc.allowed {
				b.Errorf("CanMessage = %v, want allowed=%v", err, bc.allowed)
				return false
			}
			return true
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !check(b) {
					return
				}
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !check(b) {
						return
					}
				}
			})
		})
	}
}
