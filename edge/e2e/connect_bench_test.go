package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"natter/edge/gateway"
	"natter/edge/stacktest"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/loadtest/client"
	"natter/shared/subject"
)

// BenchmarkConnectInGroups: opening a WebSocket for a user in 0, 50 or 500 groups,
// whose other members are offline: session.connect reads the user's groups and
// the edge subscribes each group's delivery subject (and confirms the
// subscriptions with the server) before the client hears it is connected.
//
//	go test -run '^$' -bench ConnectInGroups -benchtime 200x ./edge/e2e/
func BenchmarkConnectInGroups(b *testing.B) {
	for _, n := range []int{0, 50, 500} {
		b.Run(fmt.Sprint("groups=", n), func(b *testing.B) {
			st := stacktest.Start(b, gateway.Config{HTTPPublicLimit: -1, RateLimit: -1}, fntest.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			name := fmt.Sprintf("joiner%d", userSeq.Add(1))
			if _, err := client.Register(ctx, st.Base, name, "password-123"); err != nil {
				b.Fatal(err)
			}
			owner := fmt.Sprintf("owner%d", userSeq.Add(1))
			if _, err := client.Register(ctx, st.Base, owner, "password-123"); err != nil {
				b.Fatal(err)
			}
			tok, err := client.Login(ctx, st.Base, name, "password-123", "d")
			if err != nil {
				b.Fatal(err)
			}
			otok, err := client.Login(ctx, st.Base, owner, "password-123", "d")
			if err != nil {
				b.Fatal(err)
			}
			o, err := client.Dial(ctx, client.Options{URL: st.WS, Token: otok.AccessToken})
			if err != nil {
				b.Fatal(err)
			}
			me := tok.UserID
			var groups []int64
			for i := range n {
				var info group.Info
				if err := o.Call(ctx, "group.create", group.CreateReq{Name: fmt.Sprint("g", i), Members: []int64{me}}, &info); err != nil {
					b.Fatal(err)
				}
				groups = append(groups, info.GroupID)
			}
			_ = o.Close()
			// Once connected, the user's groups are subscribed.
			c, err := client.Dial(ctx, client.Options{URL: st.WS, Token: tok.AccessToken})
			if err != nil {
				b.Fatal(err)
			}
			for _, g := range groups {
				// Edges never answer on delivery subjects: a subscriber makes this time out.
				if _, err := st.Env.NC.Request(subject.DeliverGroup(g), nil, 20*time.Millisecond); errors.Is(err, nats.ErrNoResponders) {
					b.Fatalf("group %d not subscribed", g)
				}
			}
			_ = c.Close()
			time.Sleep(50 * time.Millisecond)
			b.ResetTimer()
			for range b.N {
				c, err := client.Dial(ctx, client.Options{URL: st.WS, Token: tok.AccessToken})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = c.Close()
				// The edge forgets the user (and unsubscribes the groups) before the next dial.
				time.Sleep(5 * time.Millisecond)
				b.StartTimer()
			}
		})
	}
}
