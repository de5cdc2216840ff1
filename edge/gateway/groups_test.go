package gateway_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"natter/shared/subject"
	"natter/shared/wire"
)

// expectNone fails if any of clients receives a frame within a short while.
func expectNone(t *testing.T, what string, clients ...*client) {
	t.Helper()
	for i, c := range clients {
		select {
		case fr := <-c.frames:
			t.Fatalf("%s: client %d got %s", what, i, fr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitGauge waits until the gauge name reads want, then flushes the gateway's
// connection so that the server has its (un)subscriptions.
func (f *fixture) waitGauge(t *testing.T, name string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); f.metric(t, name) != want; {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, f.metric(t, name), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

var lastGroup int64 = 1_000_000

// TestGroupDelivery: a group push arrives once per edge and goes to the
// connections of the group's members here, less the named connection and users;
// joins and leaves on users' subjects and leaves on the group's subject change
// who that is, and a leave that arrives while a connection is being set up wins
// over the membership its session.connect read earlier.
func TestGroupDelivery(t *testing.T) {
	f := newFixture(t, nil)
	lastGroup++
	g := lastGroup
	gid := strconv.FormatInt(g, 10)
	member, outsider := newUser(), newUser()
	f.stub.groups.Store(member, func() []int64 { return []int64{g} })
	a1, a2 := f.dial(t, member, "s1"), f.dial(t, member, "s2")
	b := f.dial(t, outsider, "s3")
	if got := f.metric(t, "natter_edge_groups"); got != 1 {
		t.Fatalf("groups = %v, want 1 for two connections of one member", got)
	}

	push := func(n int, hdr map[string]string) string {
		fr := fmt.Sprintf(`{"event":"msg.new","data":{"n":%d}}`, n)
		publishTo(t, subject.DeliverGroup(g), fr, hdr)
		return fr
	}
	fr := push(1, map[string]string{wire.HeaderSkipConn: a1.connID(t)})
	if got := a2.next(t); string(got) != fr {
		t.Fatalf("member's other connection got %s, want %s", got, fr)
	}
	expectNone(t, "the origin and an outsider", a1, b)

	push(2, map[string]string{wire.HeaderSkipUsers: fmt.Sprintf("%d,%d", outsider, member)})
	expectNone(t, "skipped users", a1, a2, b)

	// The outsider joins (a control on their subject).
	publish(t, outsider, "", map[string]string{wire.HeaderControl: wire.ControlGroupJoin, wire.HeaderGroup: gid})
	time.Sleep(50 * time.Millisecond) // the dispatcher applies it
	fr = push(3, nil)
	for i, c := range []*client{a1, a2, b} {
		if got := c.next(t); string(got) != fr {
			t.Fatalf("client %d got %s, want %s", i, got, fr)
		}
	}

	// The first member leaves (on the group's subject): in order with the pushes.
	publishTo(t, subject.DeliverGroup(g), "", map[string]string{wire.HeaderControl: wire.ControlGroupLeave, wire.HeaderUsers: strconv.FormatInt(member, 10)})
	fr = push(4, nil)
	if got := b.next(t); string(got) != fr {
		t.Fatalf("remaining member got %s, want %s", got, fr)
	}
	expectNone(t, "a member who left", a1, a2)

	// The last member here leaves (on their own subject): the group is unsubscribed.
	publish(t, outsider, "", map[string]string{wire.HeaderControl: wire.ControlGroupLeave, wire.HeaderGroup: gid})
	f.waitGauge(t, "natter_edge_groups", 0)
	push(5, nil)
	expectNone(t, "after the last member left", b)

	// A leave that arrives while a connection is being set up: session.connect
	// read the membership before it and must not bring it back.
	late := newUser()
	f.stub.groups.Store(late, func() []int64 {
		// On the stub's goroutine: errors are reported, not fatal.
		m := nats.NewMsg(subject.Deliver(late))
		m.Header.Set(wire.HeaderControl, wire.ControlGroupLeave)
		m.Header.Set(wire.HeaderGroup, gid)
		if err := env.NC.PublishMsg(m); err != nil {
			t.Error(err)
		}
		time.Sleep(50 * time.Millisecond) // the edge applies it before this answer
		return []int64{g}
	})
	c := f.dial(t, late, "s4")
	if got := f.metric(t, "natter_edge_groups"); got != 0 {
		t.Fatalf("groups = %v: a stale membership was subscribed", got)
	}
	push(6, nil)
	expectNone(t, "a connection whose user left while it was set up", c)
	// A later join still counts.
	publish(t, late, "", map[string]string{wire.HeaderControl: wire.ControlGroupJoin, wire.HeaderGroup: gid})
	f.waitGauge(t, "natter_edge_groups", 1)
	fr = push(7, nil)
	if got := c.next(t); string(got) != fr {
		t.Fatalf("rejoined member got %s, want %s", got, fr)
	}

	// The last connection of a member closes: the group goes with it.
	_ = c.sock.WriteClose(1000, nil)
	f.waitGauge(t, "natter_edge_groups", 0)
}

// TestGroupResyncAfterReconnect: an edge that lost NATS missed the group
// controls published meanwhile; once back it asks session.groups for its users
// and delivers by the answer.
func TestGroupResyncAfterReconnect(t *testing.T) {
	f := newFixture(t, nil)
	lastGroup += 2
	left, joined := lastGroup-1, lastGroup
	uid := newUser()
	f.stub.groups.Store(uid, func() []int64 { return []int64{left} })
	a := f.dial(t, uid, "s1")
	// Meanwhile, unseen by the edge: the user left one group and joined another.
	f.stub.groups.Store(uid, func() []int64 { return []int64{joined} })
	if err := f.nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); f.stub.groupsCalls.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no session.groups call after the reconnect")
		}
	}
	f.waitGauge(t, "natter_edge_groups", 1)
	fr := `{"event":"msg.new","data":{"n":1}}`
	for deadline := time.Now().Add(5 * time.Second); ; {
		// The resync's subscription may still be on its way to the server.
		publishTo(t, subject.DeliverGroup(joined), fr, nil)
		select {
		case got := <-a.frames:
			if string(got) != fr {
				t.Fatalf("got %s, want %s", got, fr)
			}
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("nothing from the group joined while the edge was away")
			}
			continue
		}
		break
	}
	for len(a.frames) > 0 { // retries that arrived too
		<-a.frames
	}
	publishTo(t, subject.DeliverGroup(left), `{"event":"msg.new","data":{"n":2}}`, nil)
	expectNone(t, "a group left while the edge was away", a)
}
