package settings_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"natter/functions/account"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/functions/settings"
	"natter/shared/convid"
	"natter/shared/dynconf"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/op"
	"natter/shared/testenv"
	"natter/shared/wire"
)

var (
	auditor  = endpoint.Caller{UserID: 9001, Role: op.RoleAuditor}
	operator = endpoint.Caller{UserID: 9002, Role: op.RoleOperator}
	super    = endpoint.Caller{UserID: 9003, Role: op.RoleSuperadmin}
)

func text(s string) json.RawMessage {
	b, _ := json.Marshal(message.TextContent{Text: s})
	return b
}

func TestPermissions(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	user, _ := fntest.User(t, e, "perm_user", "d")
	chat := endpoint.Caller{UserID: user.UserID, Role: "user"}
	for _, name := range []string{"admin.config.list", "admin.config.set", "admin.features.list", "admin.features.get", "admin.features.set",
		"admin.rate.list", "admin.rate.set"} {
		o := op.Must(name)
		for _, c := range []endpoint.Caller{chat, auditor, operator, super} {
			_, err := fntest.Call[json.RawMessage](t, e, name, c, map[string]any{})
			code := imerr.CodeOf(err)
			switch {
			case op.AdminRank(c.Role) == 0:
				if code != imerr.Unauthorized {
					t.Errorf("%s by a chat user: %v, want unauthorized", name, err)
				}
			case op.AdminRank(c.Role) < op.AdminRank(o.Role):
				if code != imerr.Forbidden {
					t.Errorf("%s by %s: %v, want forbidden", name, c.Role, err)
				}
			default:
				if code == imerr.Forbidden || code == imerr.Unauthorized {
					t.Errorf("%s by %s: %v, want admitted", name, c.Role, err)
				}
			}
		}
	}
}

// watchers are Live views of other processes (workers, edges) on their own
// NATS connections; each records the propagation lag of the changes it applies.
type watchers struct {
	t     *testing.T
	lives []*dynconf.Live
	lags  chan time.Duration
}

func watch(t *testing.T, e *testenv.Env, n int) *watchers {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &watchers{t: t, lags: make(chan time.Duration, 1000)}
	for range n {
		l := dynconf.New()
		l.OnChange = func(_ dynconf.Change, lag time.Duration) { w.lags <- lag }
		if err := l.Watch(ctx, e.Connect(t), dynconf.DBLoader(e.DB, true), 0, zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
		w.lives = append(w.lives, l)
	}
	return w
}

// seen waits until every watcher holds what ok checks and logs the lag.
func (w *watchers) seen(what string, ok func(*dynconf.Live) bool) {
	w.t.Helper()
	start := time.Now()
	for _, l := range w.lives {
		for !ok(l) {
			if time.Since(start) > 10*time.Second {
				w.t.Fatalf("%s: not propagated after 10 s", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	var lags []time.Duration
	for len(w.lags) > 0 {
		lags = append(lags, <-w.lags)
	}
	w.t.Logf("%s: propagated to %d watchers, lags %v", what, len(w.lives), lags)
}

func set(t *testing.T, e *testenv.Env, name string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	fntest.Must[settings.ConfigItem](t, e, "admin.config.set", super, settings.ConfigSetReq{Name: name, Value: b})
}

// retry calls f until it returns want (the workers follow the change within a
// moment; the test waits for them, never for a fixed time).
func retry(t *testing.T, what string, want imerr.Code, f func() error) {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if imerr.CodeOf(err) == want {
			return
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: %v, want %q", what, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConfigTakesEffect: config items and flags change what two running
// workers do, without a restart: recall and edit windows, registration, the
// size of new groups, and a flag that turns a message type off (with a
// per-user override).
func TestConfigTakesEffect(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	fntest.StartWorker(t, e, fntest.Options{})
	w := watch(t, e, 2)
	alice, _ := fntest.User(t, e, "alice", "d")
	bob, _ := fntest.User(t, e, "bob", "d")
	carol, _ := fntest.User(t, e, "carol", "d")
	fntest.Befriend(t, e, alice, bob)
	conv := convid.OfDirect(alice.UserID, bob.UserID).Raw
	n := 0
	sendText := func() message.SendResp {
		n++
		return fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprintf("m%d", n), Type: wire.TypeText, Content: text("hi")})
	}

	// Recall window 0: a recall is refused at once; back to the default, allowed.
	set(t, e, dynconf.RecallWindow, "0s")
	w.seen("recall window", func(l *dynconf.Live) bool { return l.Duration(dynconf.RecallWindow, time.Hour) == 0 })
	retry(t, "recall with a zero window", imerr.Forbidden, func() error {
		m := sendText()
		_, err := fntest.Call[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ConvID: conv, Seq: m.Seq}})
		return err
	})
	fntest.Must[settings.ConfigItem](t, e, "admin.config.set", super, settings.ConfigSetReq{Name: dynconf.RecallWindow, Value: json.RawMessage("null")})
	w.seen("recall window reset", func(l *dynconf.Live) bool { return l.Duration(dynconf.RecallWindow, time.Hour) == time.Hour })
	retry(t, "recall with the default window", "", func() error {
		m := sendText()
		_, err := fntest.Call[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ConvID: conv, Seq: m.Seq}})
		return err
	})

	// Edit window.
	set(t, e, dynconf.EditWindow, "0s")
	w.seen("edit window", func(l *dynconf.Live) bool { return l.Duration(dynconf.EditWindow, time.Hour) == 0 })
	retry(t, "edit with a zero window", imerr.Forbidden, func() error {
		m := sendText()
		_, err := fntest.Call[wire.Message](t, e, "msg.edit", alice, message.EditReq{MsgRef: message.MsgRef{ConvID: conv, Seq: m.Seq}, Content: text("edited")})
		return err
	})

	// Registration closed, then open.
	set(t, e, dynconf.RegistrationOpen, false)
	w.seen("registration", func(l *dynconf.Live) bool { return !l.Bool(dynconf.RegistrationOpen, true) })
	i := 0
	register := func() error {
		i++
		_, err := fntest.Call[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: fmt.Sprintf("late%d", i), Password: "password-123"})
		return err
	}
	retry(t, "register while closed", imerr.Forbidden, register)
	set(t, e, dynconf.RegistrationOpen, true)
	retry(t, "register when open", "", register)

	// New groups take the max size at their creation.
	set(t, e, dynconf.GroupMaxMembers, 2)
	w.seen("group size", func(l *dynconf.Live) bool { return l.Int(dynconf.GroupMaxMembers, 0) == 2 })
	retry(t, "group over the size", imerr.Conflict, func() error {
		_, err := fntest.Call[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "big", Members: []int64{bob.UserID, carol.UserID}})
		return err
	})
	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "small", Members: []int64{bob.UserID}})
	if g.MaxMembers != 2 {
		t.Errorf("new group's max %d, want 2", g.MaxMembers)
	}

	// A flag turns rich messages off for everyone but an override.
	rich := json.RawMessage(`{"text":"*hi*"}`)
	sendRich := func(c endpoint.Caller, to int64) func() error {
		return func() error {
			n++
			_, err := fntest.Call[message.SendResp](t, e, "msg.send", c, message.SendReq{To: to, ClientMsgID: fmt.Sprintf("r%d", n), Type: wire.TypeRich, Content: rich})
			return err
		}
	}
	off, on := false, true
	f := fntest.Must[dynconf.Flag](t, e, "admin.features.set", super, settings.FeatureSetReq{Name: dynconf.MsgTypeFlag(wire.TypeRich), Enabled: &off,
		Description: ptr("rich text messages"), SetUsers: map[string]bool{fmt.Sprint(bob.UserID): true}})
	if f.Enabled || !f.Overrides[bob.UserID] || f.UpdatedBy != super.UserID {
		t.Errorf("flag %+v", f)
	}
	w.seen("message type flag", func(l *dynconf.Live) bool { return !l.Enabled(dynconf.MsgTypeFlag(wire.TypeRich), alice.UserID, true) })
	retry(t, "rich while off", imerr.Forbidden, sendRich(alice, bob.UserID))
	retry(t, "rich for the override", "", sendRich(bob, alice.UserID))
	fntest.Must[dynconf.Flag](t, e, "admin.features.set", super, settings.FeatureSetReq{Name: dynconf.MsgTypeFlag(wire.TypeRich), Enabled: &on})
	retry(t, "rich when on", "", sendRich(alice, bob.UserID))

	// Reads and refusals.
	l := fntest.Must[settings.ConfigListResp](t, e, "admin.config.list", auditor, settings.Empty{})
	if len(l.Items) != len(dynconf.Keys) {
		t.Fatalf("%d items", len(l.Items))
	}
	for _, it := range l.Items {
		if it.Name == dynconf.GroupMaxMembers && (string(it.Value) != "2" || it.UpdatedBy != super.UserID || it.Type != dynconf.TypeInt) {
			t.Errorf("listed %+v", it)
		}
	}
	fl := fntest.Must[settings.FeaturesListResp](t, e, "admin.features.list", auditor, settings.Empty{})
	if len(fl.Flags) != 1 || !fl.Flags[0].Enabled {
		t.Errorf("flags %+v", fl.Flags)
	}
	_, err := fntest.Call[dynconf.Flag](t, e, "admin.features.get", auditor, settings.FeatureReq{Name: "nope"})
	fntest.WantCode(t, err, imerr.NotFound)
	for _, bad := range []settings.ConfigSetReq{
		{Name: "no.such", Value: json.RawMessage("1")},
		{Name: dynconf.GroupMaxMembers, Value: json.RawMessage(`"x"`)},
		{Name: dynconf.GroupMaxMembers, Value: json.RawMessage(`1`)}, // under the minimum
		{Name: dynconf.RecallWindow, Value: json.RawMessage(`"soon"`)},
		{Name: dynconf.RegistrationOpen, Value: json.RawMessage(`"yes"`)},
	} {
		_, err := fntest.Call[settings.ConfigItem](t, e, "admin.config.set", super, bad)
		fntest.WantCode(t, err, imerr.BadRequest)
	}
	_, err = fntest.Call[dynconf.Flag](t, e, "admin.features.set", super, settings.FeatureSetReq{Name: "Bad Name"})
	fntest.WantCode(t, err, imerr.BadRequest)
	_, err = fntest.Call[dynconf.Flag](t, e, "admin.features.set", super, settings.FeatureSetReq{Name: "x", Percent: ptr(101)})
	fntest.WantCode(t, err, imerr.BadRequest)

	// An edge's view: settings.snapshot has the items and flags.
	snap, err := endpoint.Call[dynconf.Snapshot](context.Background(), e.NC, "settings.snapshot", endpoint.Caller{}, settings.Empty{})
	if err != nil || len(snap.Items) < 4 || len(snap.Flags) != 1 {
		t.Errorf("snapshot %+v %v", snap, err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestRatePolicy: the global per-minute and per-second limits per conversation
// kind, a per-user override, and clearing it.
func TestRatePolicy(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	w := watch(t, e, 1)
	alice, _ := fntest.User(t, e, "alice", "d")
	bob, _ := fntest.User(t, e, "bob", "d")
	fntest.Befriend(t, e, alice, bob)
	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "club", Members: []int64{bob.UserID}})
	n := 0
	send := func(c endpoint.Caller, to int64, conv string) error {
		n++
		_, err := fntest.Call[message.SendResp](t, e, "msg.send", c, message.SendReq{To: to, ConvID: conv, ClientMsgID: fmt.Sprintf("m%d", n), Type: wire.TypeText, Content: text("hi")})
		return err
	}
	// Fixed one-minute windows: start well inside one.
	if s := time.Now().Second(); s >= 40 {
		time.Sleep(time.Duration(61-s) * time.Second)
	}
	set(t, e, dynconf.RateDirectMinute, 5)
	set(t, e, dynconf.RateGroupMinute, 3)
	w.seen("global rate", func(l *dynconf.Live) bool { return l.Rate(1).GroupPerMinute == 3 })
	fntest.Must[dynconf.RateOverride](t, e, "admin.rate.set", operator, settings.RateSetReq{UserID: bob.UserID, DirectPerMinute: ptr(2)})
	w.seen("override", func(l *dynconf.Live) bool { return l.Rate(bob.UserID).DirectPerMinute == 2 })
	for i := range 5 {
		if err := send(alice, bob.UserID, ""); err != nil {
			t.Fatalf("alice's send %d: %v", i+1, err)
		}
	}
	fntest.WantCode(t, send(alice, bob.UserID, ""), imerr.RateLimited)
	for i := range 3 { // groups count apart
		if err := send(alice, 0, g.ConvID); err != nil {
			t.Fatalf("alice's group send %d: %v", i+1, err)
		}
	}
	fntest.WantCode(t, send(alice, 0, g.ConvID), imerr.RateLimited)
	for i := range 2 {
		if err := send(bob, alice.UserID, ""); err != nil {
			t.Fatalf("bob's send %d: %v", i+1, err)
		}
	}
	fntest.WantCode(t, send(bob, alice.UserID, ""), imerr.RateLimited)
	// Cleared, bob's limit is the global 5 again (2 used).
	fntest.Must[dynconf.RateOverride](t, e, "admin.rate.set", operator, settings.RateSetReq{UserID: bob.UserID})
	w.seen("override cleared", func(l *dynconf.Live) bool { return l.Rate(bob.UserID).DirectPerMinute == 5 })
	for i := range 3 {
		if err := send(bob, alice.UserID, ""); err != nil {
			t.Fatalf("bob's send %d after the clear: %v", i+3, err)
		}
	}
	fntest.WantCode(t, send(bob, alice.UserID, ""), imerr.RateLimited)

	// Per second: a user allowed 1 a second is refused a second send within
	// it (retried until two sends fall in one second).
	fntest.Must[dynconf.RateOverride](t, e, "admin.rate.set", operator, settings.RateSetReq{UserID: alice.UserID, GroupPerSecond: ptr(1), GroupPerMinute: ptr(0)})
	w.seen("per second", func(l *dynconf.Live) bool { return l.Rate(alice.UserID).GroupPerSecond == 1 })
	limited := false
	for range 5 {
		first := send(alice, 0, g.ConvID)
		second := send(alice, 0, g.ConvID)
		if imerr.CodeOf(second) == imerr.RateLimited {
			limited = true
			break
		}
		t.Logf("no refusal (%v, %v): the sends straddled a second", first, second)
	}
	if !limited {
		t.Error("never refused at 1 a second")
	}
	rl := fntest.Must[settings.RateListResp](t, e, "admin.rate.list", auditor, settings.RateListReq{})
	if len(rl.Overrides) != 1 || rl.Overrides[0].UserID != alice.UserID || rl.Global.DirectPerMinute != 5 {
		t.Errorf("rate list %+v", rl)
	}
	_, err := fntest.Call[dynconf.RateOverride](t, e, "admin.rate.set", operator, settings.RateSetReq{UserID: 1 << 40, DirectPerSecond: ptr(1)})
	fntest.WantCode(t, err, imerr.NotFound)
	_, err = fntest.Call[dynconf.RateOverride](t, e, "admin.rate.set", operator, settings.RateSetReq{UserID: alice.UserID, DirectPerSecond: ptr(-1)})
	fntest.WantCode(t, err, imerr.BadRequest)
}
