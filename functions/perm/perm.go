// Package perm is the one table of who may do what in a group: the group domain
// checks every management action against it and the message domain checks sending
// and recalling; docs/protocol.md prints the same table.
package perm

import (
	"fmt"
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
// has no target member). It returns a forbidden error whose message is a whole
// sentence saying why not.
func Check(a Action, actor Role, target *Role, self bool) error {
	r, ok := Rules[a]
	if !ok {
		return imerr.New(imerr.Forbidden, "unknown action %s", a)
	}
	p := phrases[a]
	if actor < r.Min {
		return imerr.New(imerr.Forbidden, "only %s may %s", who(r.Min), p.general)
	}
	if actor > r.Max {
		if a == Leave {
			return imerr.New(imerr.Forbidden, "the owner must transfer ownership before leaving")
		}
		return imerr.New(imerr.Forbidden, "%s may not %s", actor.phrase(), p.general)
	}
	if r.NotSelf && self {
		return imerr.New(imerr.Forbidden, "you cannot %s", p.on("yourself"))
	}
	if r.Outrank && target != nil && !self && actor <= *target {
		return imerr.New(imerr.Forbidden, "%s cannot %s", actor.phrase(), p.on(target.phrase()))
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

// phrase names a member of role r in a sentence.
func (r Role) phrase() string {
	switch r {
	case Owner:
		return "the owner"
	case Admin:
		return "an admin"
	default:
		return "a member"
	}
}

// who names everyone of role min or above.
func who(min Role) string {
	switch min {
	case Owner:
		return "the owner"
	case Admin:
		return "the owner and admins"
	default:
		return "members"
	}
}

// phrase is how an action reads in an error: in general, and done to one member.
type phrase struct {
	general string
	target  string // with %s for the member; empty: the action has no target
}

func (p phrase) on(member string) string {
	if p.target == "" {
		return p.general
	}
	return fmt.Sprintf(p.target, member)
}

var phrases = map[Action]phrase{
	UpdateInfo:   {general: "change the group's info"},
	Invite:       {general: "invite members"},
	ReviewJoin:   {general: "review join requests"},
	Kick:         {general: "remove members", target: "remove %s"},
	SetRole:      {general: "change members' roles", target: "change the role of %s"},
	Transfer:     {general: "transfer ownership", target: "transfer ownership to %s"},
	MuteMember:   {general: "mute members", target: "mute %s"},
	MuteAll:      {general: "mute the whole group"},
	Announce:     {general: "post announcements"},
	Dismiss:      {general: "dismiss the group"},
	Leave:        {general: "leave the group"},
	Send:         {general: "send messages"},
	ReadHistory:  {general: "read this group"},
	MentionAll:   {general: "mention everyone"},
	RecallOthers: {general: "recall other members' messages", target: "recall the messages of %s"},
}
