package subject

import (
	"strings"
	"testing"
)

// TestStreams: every event subject is captured by exactly one stream, and no two
// streams' subjects overlap (NATS refuses overlapping streams).
func TestStreams(t *testing.T) {
	events := []string{EvtMessageSent, EvtMessageEdited, EvtMessageRecalled, EvtUserCreated, EvtSessionRevoked, EvtAccountDeleted,
		EvtLoginLocked, EvtRelationsChanged, EvtFriendRequestSent, EvtFileUploaded, PushDead("webhook")}
	for _, ev := range events {
		n := 0
		for _, subjects := range Streams {
			for _, s := range subjects {
				if matches(s, ev) {
					n++
				}
			}
		}
		if n != 1 {
			t.Errorf("%s is captured %d times", ev, n)
		}
	}
	var all []string
	for _, subjects := range Streams {
		all = append(all, subjects...)
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if strings.HasPrefix(strings.TrimSuffix(a, ">"), strings.TrimSuffix(b, ">")) || strings.HasPrefix(strings.TrimSuffix(b, ">"), strings.TrimSuffix(a, ">")) {
				t.Errorf("%s and %s overlap", a, b)
			}
		}
	}
}

// matches reports whether subject s is matched by filter f (tokens, * and >).
func matches(f, s string) bool {
	ft, st := strings.Split(f, "."), strings.Split(s, ".")
	for i, tok := range ft {
		if tok == ">" {
			return len(st) > i
		}
		if i >= len(st) || (tok != "*" && tok != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}
