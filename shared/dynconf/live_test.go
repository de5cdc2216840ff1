package dynconf

import (
	"encoding/json"
	"hash/fnv"
	"strconv"
	"testing"
	"time"
)

func TestBucketIsFNV1a(t *testing.T) {
	for _, u := range []int64{0, 7, 123456789, -3} {
		h := fnv.New32a()
		_, _ = h.Write([]byte("flag:" + strconv.FormatInt(u, 10)))
		if got, want := Bucket("flag", u), int(h.Sum32()%100); got != want {
			t.Errorf("Bucket(flag, %d) = %d, want %d", u, got, want)
		}
	}
}

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

// The send path reads the rate policy and a message-type flag on every send.
func TestReadsAllocateNothing(t *testing.T) {
	l := New()
	one := 1
	l.Apply(Change{Rate: &RateOverride{UserID: 5, DirectPerSecond: &one, Version: 1}})
	l.Apply(Change{Flag: &Flag{Name: MsgTypeFlag("voice"), Percent: 50, Version: 1}})
	if n := testing.AllocsPerRun(100, func() {
		_ = l.Rate(5)
		_ = l.Rate(6)
		_ = l.Enabled(MsgTypeFlag("text"), 5, true)
		_ = l.Enabled(MsgTypeFlag("voice"), 5, true)
		_ = l.Bool(RegistrationOpen, true)
	}); n != 0 {
		t.Errorf("%v allocations per read", n)
	}
}
