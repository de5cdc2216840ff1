// Package dynconf is natter's runtime configuration: config items (typed values an
// operator changes while the system runs), feature flags (global, per-user
// overrides, a percentage rollout by a stable hash of the user id) and per-user
// send rate overrides. MySQL holds the truth (functions/settings writes it);
// every worker and edge keeps a read-only snapshot in memory (Live), updated by
// the im.evt.config.changed event each change publishes and reloaded in full at
// start and every minute, so that a missed event heals. Readers on hot paths
// take one atomic load.
package dynconf

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Type is a config item's value type.
type Type string

const (
	TypeInt      Type = "int"
	TypeBool     Type = "bool"
	TypeDuration Type = "duration" // a Go duration string: "2m", "90s"
	TypeString   Type = "string"
)

// Key describes a config item the code reads. Only these keys can be set.
type Key struct {
	Name        string `json:"name"`
	Type        Type   `json:"type"`
	Description string `json:"description"`
	// Default is the value when no operator set one (JSON). Empty: the binary's
	// own setting from its environment (e.g. MESSAGE_RECALL_WINDOW).
	Default string `json:"default,omitempty"`
	Min     int64  `json:"min,omitempty"` // ints: inclusive bounds; durations: in seconds
	Max     int64  `json:"max,omitempty"`
}

// Names of the config items.
const (
	RecallWindow     = "message.recall_window"
	EditWindow       = "message.edit_window"
	GroupMaxMembers  = "group.max_members"
	RegistrationOpen = "account.registration_open"
	RateDirectSecond = "rate.direct_per_second"
	RateDirectMinute = "rate.direct_per_minute"
	RateGroupSecond  = "rate.group_per_second"
	RateGroupMinute  = "rate.group_per_minute"
)

// Keys lists every config item. The send rates default to no limit: an
// operator sets the global policy (and per-user overrides) for the deployment;
// with no limit set a send makes no rate round trip.
var Keys = []Key{
	{Name: RecallWindow, Type: TypeDuration, Description: "How long after sending a sender may recall a message (default: MESSAGE_RECALL_WINDOW).", Min: 0, Max: 7 * 24 * 3600},
	{Name: EditWindow, Type: TypeDuration, Description: "How long after sending a sender may edit a message (default: MESSAGE_EDIT_WINDOW).", Min: 0, Max: 7 * 24 * 3600},
	{Name: GroupMaxMembers, Type: TypeInt, Description: "Most members a group created from now on may hold (default: GROUP_MAX_MEMBERS).", Min: 2, Max: 100000},
	{Name: RegistrationOpen, Type: TypeBool, Description: "Whether new users may register.", Default: "true"},
	{Name: RateDirectSecond, Type: TypeInt, Description: "Messages a user may send per second in 1:1 conversations (0: no limit).", Default: "0", Min: 0, Max: 100000},
	{Name: RateDirectMinute, Type: TypeInt, Description: "Messages a user may send per minute in 1:1 conversations (0: no limit).", Default: "0", Min: 0, Max: 1000000},
	{Name: RateGroupSecond, Type: TypeInt, Description: "Messages a user may send per second in groups (0: no limit).", Default: "0", Min: 0, Max: 100000},
	{Name: RateGroupMinute, Type: TypeInt, Description: "Messages a user may send per minute in groups (0: no limit).", Default: "0", Min: 0, Max: 1000000},
}

// KeyOf finds a config item's description.
func KeyOf(name string) (Key, bool) {
	for _, k := range Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// Parse checks a JSON value against k and returns it typed (int64, bool,
// time.Duration, string).
func (k Key) Parse(raw json.RawMessage) (any, error) {
	switch k.Type {
	case TypeInt:
		var n int64
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("%s: an integer", k.Name)
		}
		if n < k.Min || (k.Max > 0 && n > k.Max) {
			return nil, fmt.Errorf("%s: between %d and %d", k.Name, k.Min, k.Max)
		}
		return n, nil
	case TypeBool:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("%s: true or false", k.Name)
		}
		return b, nil
	case TypeDuration:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%s: a duration such as \"2m\"", k.Name)
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s: a duration such as \"2m\"", k.Name)
		}
		if d < time.Duration(k.Min)*time.Second || (k.Max > 0 && d > time.Duration(k.Max)*time.Second) {
			return nil, fmt.Errorf("%s: between %v and %v", k.Name, time.Duration(k.Min)*time.Second, time.Duration(k.Max)*time.Second)
		}
		return d, nil
	case TypeString:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || len(s) > 1000 {
			return nil, fmt.Errorf("%s: a string of at most 1000 bytes", k.Name)
		}
		return s, nil
	}
	return nil, fmt.Errorf("%s: unknown type %s", k.Name, k.Type)
}

// MsgTypeFlag is the feature flag that gates a message type: when a flag of this
// name exists and is off for a user, the user cannot send messages of the type
// (no flag: the type is allowed).
func MsgTypeFlag(typ string) string { return "msgtype." + typ }
