// Package perm is the one table of who may do what in a group: the group domain
// checks every management action against it and the message domain checks sending
// and recalling; docs/protocol.md prints the same table.
package perm

import (
	"time"

	"natter/shared/imerr"
)

// Role is a member's rank; a higher value outranks a lower one.
type Role int8

const (
	Member Role = 0
	Admin  Role = 1
	Owner  Role = 2
)

func (r Role) String() string {
	switch r {
	case Owner:
		return "owner"
	case Admin:
		return "admin"
	default:
		return "member"
	}
}

// ParseRole reads "owner", "admin" or "member".
func ParseRole(s string) (Role, bool) {
	switch s {
	case "owner":
		return Owner, true
	case "admin":
		return Admin, true
	case "member":
		return Member, true
	}
	return 0, false
}

// Action is something a member does in a group.
type Action string

const (
	UpdateInfo   Action = "update_info"   // name, avatar, intro, join policy, history visibility
	Invite       Action = "invite"        // add users directly (members too, when the group is open)
	ReviewJoin   Action = "review_join"   // accept or reject join requests
	Kick         Action = "kick"          // remove a member
	SetRole      Action = "set_role"      // make a member admin or an admin member
	Transfer     Action = "transfer"      // hand ownership to another member
	MuteMember   Action = "mute_member"   // silence one member for a while
	MuteAll      Action = "mute_all"      // only owner and admins may speak
	Announce     Action = "announce"      // post an announcement
	Dismiss      Action = "dismiss"       // end the group
	Leave        Action = "leave"         // leave the group
	Send         Action = "send"          // post a message (subject to mutes)
	ReadHistory  Action = "read_history"  // read messages and members
	MentionAll   Action = "mention_all"   // @all
	RecallOthers Action = "recall_others" // recall someone else's message
)

// Rule says who may take an action.
type Rule struct {
	Min     Role // lowest role that may act
	Max     Role // highest role that may act (Leave: the owner must transfer first)
	Outrank bool // the actor must rank above the target
	NotSelf bool // the target may not be the actor
}

// Rules is the table.
var Rules = map[Action]Rule{
	UpdateInfo:   {Min: Admin, Max: Owner},
	Invite:       {Min: Admin, Max: Owner}, // members too when join_policy is open
	ReviewJoin:   {Min: Admin, Max: Owner},
	Kick:         {Min: Admin, Max: Owner, Outrank: true, NotSelf: true},
	SetRole:      {Min: Owner, Max: Owner, Outrank: true, NotSelf: true},
	Transfer:     {Min: Owner, Max: Owner, NotSelf: true},
	MuteMember:   {Min: Admin, Max: Owner, Outrank: true, NotSelf: true},
	MuteAll:      {Min: Admin, Max: Owner},
	Announce:     {Min: Admin, Max: Owner},
	Dismiss:      {Min: Owner, Max: Owner},
	Leave:        {Min: Member, Max: Admin},
	Send:         {Min: Member, Max: Owner},
	ReadHistory:  {Min: Member, Max: Owner},
	MentionAll:   {Min: Admin, Max: Owner},
	RecallOthers: {Min: Admin, Max: Owner, Outrank: true},
}

// Order lists the actions in documentation order.
var Order = []Action{UpdateInfo, Invite, ReviewJoin, Kick, SetRole, Transfer, MuteMember, MuteAll, Announce, Dismiss, Leave, Send, ReadHistory, MentionAll, RecallOthers}

// Check reports whether actor may take action a on target (nil when the action
// has no target member). It returns a forbidden error saying why not.
func Check(a Action, actor Role, target *Role, self bool) error {
	r, ok := Rules[a]
	if !ok {
		return imerr.New(imerr.Forbidden, "unknown action %s", a)
	}
	if actor < r.Min {
		return imerr.New(imerr.Forbidden, "only the %s%s may %s", r.Min, orAbove(r.Min), human(a))
	}
	if actor > r.Max {
		if a == Leave {
			return imerr.New(imerr.Forbidden, "the owner must transfer ownership before leaving")
		}
		return imerr.New(imerr.Forbidden, "the %s may not %s", actor, human(a))
	}
	if r.NotSelf && self {
		return imerr.New(imerr.Forbidden, "you cannot %s yourself", human(a))
	}
	if r.Outrank && target != nil && !self && actor <= *target {
		return imerr.New(imerr.Forbidden, "a %s cannot %s a %s", actor, human(a), *target)
	}
	return nil
}

// CheckSend applies mutes on top of the Send rule.
func CheckSend(actor Role, mutedUntil time.Time, muteAll bool, now time.Time) error {
	if mutedUntil.After(now) {
		return imerr.New(imerr.Forbidden, "you are muted in this group until %s", mutedUntil.UTC().Format(time.RFC3339))
	}
	if muteAll && actor < Admin {
		return imerr.New(imerr.Forbidden, "only the owner and admins may speak while the group is muted")
	}
	return nil
}

func orAbove(r Role) string {
	if r == Owner {
		return ""
	}
	return " or above"
}

func human(a Action) string {
	switch a {
	case UpdateInfo:
		return "change the group's info"
	case ReviewJoin:
		return "review join requests"
	case SetRole:
		return "change roles of"
	case Transfer:
		return "transfer ownership to"
	case MuteMember:
		return "mute"
	case MuteAll:
		return "mute the whole group"
	case ReadHistory:
		return "read this group"
	case MentionAll:
		return "mention everyone"
	case RecallOthers:
		return "recall messages of"
	default:
		return string(a)
	}
}
