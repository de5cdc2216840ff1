package friend

import (
	"errors"
	"testing"
	"time"
)

func TestVerdicts(t *testing.T) {
	now := time.Unix(1000, 0)
	v := newVerdicts(time.Minute, 4)
	no := errors.New("no")

	_, ok, st := v.get(1, 2, now)
	if ok {
		t.Fatal("hit in an empty cache")
	}
	v.put(1, 2, no, st, now)
	if got, ok, _ := v.get(1, 2, now); !ok || got != no {
		t.Fatalf("get = %v, %v after put", got, ok)
	}
	if _, ok, _ := v.get(2, 1, now); ok {
		t.Fatal("the reverse pair is another question")
	}
	if _, ok, _ := v.get(1, 2, now.Add(time.Minute)); ok {
		t.Fatal("hit after the TTL")
	}

	// Forget either user drops the pair.
	for _, u := range []int64{1, 2} {
		_, _, st := v.get(1, 2, now)
		v.put(1, 2, nil, st, now)
		v.forget(u)
		if _, ok, _ := v.get(1, 2, now); ok {
			t.Fatalf("hit after forget(%d)", u)
		}
	}

	// An answer read before a change must not be stored after that change's forget.
	_, _, st = v.get(3, 4, now)
	v.forget(4)
	v.put(3, 4, nil, st, now)
	if _, ok, _ := v.get(3, 4, now); ok {
		t.Fatal("stale answer stored after forget")
	}

	// reset drops everything, including answers being read meanwhile.
	_, _, st = v.get(5, 6, now)
	v.put(7, 8, nil, stamp{v.epochs[slot(7)], v.epochs[slot(8)]}, now)
	v.reset()
	v.put(5, 6, nil, st, now)
	if _, ok, _ := v.get(7, 8, now); ok {
		t.Fatal("hit after reset")
	}
	if _, ok, _ := v.get(5, 6, now); ok {
		t.Fatal("answer read before reset stored after it")
	}

	// The size stays bounded.
	for i := range int64(100) {
		_, _, st := v.get(10+i, 20+i, now)
		v.put(10+i, 20+i, nil, st, now)
	}
	if n := len(v.entries); n > 4 {
		t.Fatalf("%d entries, max 4", n)
	}
}
