package perm

import (
	"strings"
	"testing"

	"natter/shared/imerr"
)

func TestCheckMessages(t *testing.T) {
	owner, admin, member := Owner, Admin, Member
	tests := []struct {
		a      Action
		actor  Role
		target *Role
		self   bool
		want   string // the whole message; empty: allowed
	}{
		{Transfer, Admin, &member, false, "only the owner may transfer ownership"},
		{Kick, Member, &member, false, "only the owner and admins may remove members"},
		{Kick, Admin, &admin, false, "an admin cannot remove an admin"},
		{Kick, Admin, &owner, false, "an admin cannot remove the owner"},
		{Kick, Owner, &owner, true, "you cannot remove yourself"},
		{SetRole, Owner, &owner, true, "you cannot change the role of yourself"},
		{RecallOthers, Admin, &owner, false, "an admin cannot recall the messages of the owner"},
		{Leave, Owner, nil, false, "the owner must transfer ownership before leaving"},
		{Kick, Admin, &member, false, ""},
		{Send, Member, nil, false, ""},
	}
	for _, tt := range tests {
		err := Check(tt.a, tt.actor, tt.target, tt.self)
		got := ""
		if err != nil {
			got = imerr.From(err).Message
			if imerr.CodeOf(err) != imerr.Forbidden {
				t.Errorf("%s: code %v", tt.a, imerr.CodeOf(err))
			}
		}
		if got != tt.want {
			t.Errorf("%s by %s: %q, want %q", tt.a, tt.actor, got, tt.want)
		}
	}
}

// TestEveryActionReads: each action of the table has its phrases, and no refusal
// of any role to any role ends mid-sentence.
func TestEveryActionReads(t *testing.T) {
	roles := []Role{Member, Admin, Owner}
	for _, a := range Order {
		if _, ok := phrases[a]; !ok {
			t.Fatalf("%s has no phrase", a)
		}
		for _, actor := range roles {
			for _, target := range roles {
				for _, self := range []bool{false, true} {
					err := Check(a, actor, &target, self)
					if err == nil {
						continue
					}
					msg := imerr.From(err).Message
					for _, end := range []string{" to", " of", " a", " an", " the", " may"} {
						if strings.HasSuffix(msg, end) {
							t.Errorf("%s by %s on %s: %q is cut off", a, actor, target, msg)
						}
					}
				}
			}
		}
	}
	if len(Order) != len(Rules) || len(phrases) != len(Rules) {
		t.Fatalf("%d actions in order, %d rules, %d phrases", len(Order), len(Rules), len(phrases))
	}
}
