package friend

import (
	"sync"
	"time"
)

// verdicts caches CanMessage answers per (from, to) pair in one worker. Every
// change to a pair's blocks, friendship or privacy makes the friend domain call
// Forget for both users, here and, through subject.EvtRelationsChanged, in every
// other worker; a TTL bounds what a missed event could leave behind.
//
// Invalidation is by epoch: each user hashes to a slot whose counter Forget bumps,
// and an entry is good only while both its users' slots still hold the counters
// read before its query ran. So an answer read from the database before a change
// committed can never be stored as fresh after that change's Forget, and Forget
// costs O(1) however many pairs involve the user. Users sharing a slot only cost
// each other a cache miss.
type verdicts struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[[2]int64]verdictEntry
	epochs  [epochSlots]uint64
}

const epochSlots = 1 << 14

type verdictEntry struct {
	err      error // nil: allowed
	from, to uint64
	expires  int64 // unix nanoseconds
}

func newVerdicts(ttl time.Duration, maxEntries int) *verdicts {
	return &verdicts{ttl: ttl, max: maxEntries, entries: make(map[[2]int64]verdictEntry)}
}

func slot(user int64) int { return int(uint64(user) * 0x9E3779B97F4A7C15 >> 50) }

// stamp is the pair's epochs before a lookup in the database.
type stamp struct{ from, to uint64 }

// get returns the cached answer for (from, to) (nil: allowed), or ok false with
// the stamp to store a fresh answer under.
func (v *verdicts) get(from, to int64, now time.Time) (answer error, ok bool, st stamp) {
	v.mu.Lock()
	defer v.mu.Unlock()
	st = stamp{v.epochs[slot(from)], v.epochs[slot(to)]}
	e, found := v.entries[[2]int64{from, to}]
	if found && e.from == st.from && e.to == st.to && now.UnixNano() < e.expires {
		return e.err, true, st
	}
	return nil, false, st
}

// put stores an answer read from the database after get returned st.
func (v *verdicts) put(from, to int64, err error, st stamp, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.epochs[slot(from)] != st.from || v.epochs[slot(to)] != st.to {
		return // changed meanwhile: the answer may be older than the change
	}
	if len(v.entries) >= v.max {
		for k := range v.entries { // evict some arbitrary entries (map order is random)
			delete(v.entries, k)
			if len(v.entries) < v.max*7/8 {
				break
			}
		}
	}
	v.entries[[2]int64{from, to}] = verdictEntry{err: err, from: st.from, to: st.to, expires: now.Add(v.ttl).UnixNano()}
}

// reset drops every cached answer.
func (v *verdicts) reset() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.entries)
	for i := range v.epochs {
		v.epochs[i]++ // answers being read now must not be stored either
	}
}

// forget invalidates every cached answer involving any of users.
func (v *verdicts) forget(users ...int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, u := range users {
		v.epochs[slot(u)]++
	}
}
