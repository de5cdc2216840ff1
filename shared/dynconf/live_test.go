package dynconf

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFlagRollout(t *testing.T) {
	f := Flag{Name: "new-ui", Percent: 30, Overrides: map[int64]bool{7: true, 8: false}}
	on := 0
	for u := int64(100); u < 10100; u++ {
		if f.On(u) {
			on++
		}
		if f.On(u) != f.On(u) {
			t.Fatal("not stable")
		}
	}
	if on < 2700 || on > 3300 {
		t.Errorf("%d of 10000 users on at 30%%", on)
	}
	// Raising the percentage only adds users.
	g := f
	g.Percent = 60
	for u := int64(100); u < 10100; u++ {
		if f.On(u) && !g.On(u) {
			t.Fatalf("user %d dropped when the rollout grew", u)
		}
	}
	if !f.On(7) || f.On(8) {
		t.Error("overrides do not win")
	}
	f.Enabled = true
	if !f.On(12345) || f.On(8) {
		t.Error("enabled: everyone but an off override")
	}
	// Flags pick different users.
	a, b := Flag{Name: "a", Percent: 50}, Flag{Name: "b", Percent: 50}
	same := 0
	for u := int64(0); u < 1000; u++ {
		if a.On(u) == b.On(u) {
			same++
		}
	}
	if same > 600 {
		t.Errorf("flags a and b agree on %d of 1000 users", same)
	}
}

func TestLiveVersions(t *testing.T) {
	l := New()
	if l.Duration(RecallWindow, time.Minute) != time.Minute || !l.Bool(RegistrationOpen, false) || l.Int(RateDirectSecond, 9) != 0 {
		t.Fatal("defaults")
	}
	item := func(v string, version int64) Change {
		return Change{Item: &Item{Name: RecallWindow, Value: json.RawMessage(v), Version: version}}
	}
	if !l.Apply(item(`"5m"`, 2)) || l.Duration(RecallWindow, 0) != 5*time.Minute {
		t.Fatal("apply")
	}
	if l.Apply(item(`"1m"`, 1)) || l.Duration(RecallWindow, 0) != 5*time.Minute {
		t.Fatal("an older change overtook a newer one")
	}
	// A load older than what an event brought keeps the event's value.
	l.Load(Snapshot{Items: []Item{{Name: RecallWindow, Value: json.RawMessage(`"1m"`), Version: 1}}})
	if l.Duration(RecallWindow, 0) != 5*time.Minute {
		t.Fatal("an older load overwrote a newer event")
	}
	l.Apply(item(`null`, 3))
	if l.Duration(RecallWindow, time.Second) != time.Second {
		t.Fatal("null is the default")
	}
	one, two := 1, 2
	l.Apply(Change{Item: &Item{Name: RateDirectMinute, Value: json.RawMessage(`10`), Version: 1}})
	l.Apply(Change{Rate: &RateOverride{UserID: 5, DirectPerSecond: &one, GroupPerMinute: &two, Version: 1}})
	if p := l.Rate(5); p != (RatePolicy{DirectPerSecond: 1, DirectPerMinute: 10, GroupPerMinute: 2}) {
		t.Errorf("rate %+v", p)
	}
	if p := l.Rate(6); p != (RatePolicy{DirectPerMinute: 10}) {
		t.Errorf("rate of a user without override %+v", p)
	}
}
