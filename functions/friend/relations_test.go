package friend_test

import (
	"context"
	"fmt"
	"testing"

	"natter/functions/fntest"
	"natter/functions/friend"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/testenv"
)

// TestCanMessage walks the truth table friends × the recipient's messages setting ×
// blocks either way, setting each state up through the ops on one pair of users.
func TestCanMessage(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	from, _ := fntest.User(t, e, "sender", "s1")
	to, _ := fntest.User(t, e, "recipient", "r1")
	rel := friend.NewRelations(e.DB)

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
			// The batch form answers the same, pair by pair.
			many, qerr := rel.CanMessageMany(context.Background(), []int64{from.UserID, from.UserID}, []int64{to.UserID, 999999})
			if qerr != nil || len(many) != 2 || imerr.CodeOf(many[0]) != imerr.CodeOf(err) || imerr.CodeOf(many[1]) != imerr.NotFound {
				t.Fatalf("CanMessageMany = %v, %v; CanMessage = %v", many, qerr, err)
			}
			if err != nil && imerr.From(many[0]).Message != imerr.From(err).Message {
				t.Fatalf("CanMessageMany says %q, CanMessage %q", imerr.From(many[0]).Message, imerr.From(err).Message)
			}
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

// BenchmarkCanMessage measures the send path's relation check against MySQL: one
// prepared statement, five primary-key lookups, one round trip.
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
	}
	for _, bc := range cases {
		check := func(b *testing.B) bool {
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
