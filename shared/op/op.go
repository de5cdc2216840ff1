// Package op is the table of every operation natter serves: its name (the client's
// "op" and the subject suffix), the micro service that owns it, who may call it and
// the seed's REST routes that map onto it. The edge routes from this table alone, and
// functions register their handlers against it, so adding an operation is one line
// here plus its handler.
package op

import (
	"slices"
	"strings"

	"natter/shared/subject"
)

// Access says who may call an op.
type Access uint8

const (
	User     Access = iota // a logged-in user (access token)
	Public                 // anyone: register, login, refresh
	Internal               // only the edge itself, never a client frame or HTTP route; served on im.internal.<op>
	Admin                  // an operator of the back office (admin token, never a chat token); op names start with "admin." so they are served on im.v1.admin.<...>
)

// Operator roles, weakest first. An Admin op names the weakest role that may call it
// (Op.Role); a stronger role may too.
const (
	RoleAuditor    = "auditor"    // reads everything, changes nothing
	RoleOperator   = "operator"   // day-to-day moderation
	RoleSuperadmin = "superadmin" // also operators, configuration
)

// AdminRank orders operator roles: 0 for anything that is not one (a chat user's
// role), then auditor < operator < superadmin.
func AdminRank(role string) int {
	switch role {
	case RoleAuditor:
		return 1
	case RoleOperator:
		return 2
	case RoleSuperadmin:
		return 3
	}
	return 0
}

// Route maps a REST route onto an op. Path and query parameters become fields of
// the request object; those named in Ints are sent as JSON numbers.
type Route struct {
	Method string
	Path   string // net/http pattern path, e.g. /api/v1/users/{user_id}
	Ints   []string
}

// Op describes one operation.
type Op struct {
	Name    string
	Service string
	Access  Access
	Role    string // Admin ops: the weakest operator role allowed (RoleAuditor...)
	Routes  []Route
}

// Subject is the NATS request subject serving o: im.v1.<op>, or
// im.internal.<op> for an internal op.
func (o Op) Subject() string {
	if o.Access == Internal {
		return subject.Internal(o.Name)
	}
	return subject.Request(o.Name)
}

// BackOffice tells whether o belongs to the back office (its name starts with
// "admin."): it is served on im.v1.admin.<...> and routed only by an edge's admin
// paths (/api/v1/admin/..., operator tokens), never by its chat paths, even
// admin.login, which is Public.
func (o Op) BackOffice() bool { return strings.HasPrefix(o.Name, "admin.") }

// Endpoint is o's micro endpoint name (micro forbids dots in names).
func (o Op) Endpoint() string { return strings.ReplaceAll(o.Name, ".", "_") }

// Micro service names, one per domain.
const (
	SvcAccount = "im-account"
	SvcMessage = "im-message"
	SvcFriend  = "im-friend"
	SvcGroup   = "im-group"
	SvcConv    = "im-conv"
	SvcFile    = "im-file"
	SvcFav     = "im-fav"
	SvcPush    = "im-push"
	SvcAdmin   = "im-admin"
	// Risk control (sensitive words, review queue, reports) and runtime settings
	// (config items, feature flags, rate overrides).
	SvcRisk     = "im-risk"
	SvcSettings = "im-settings"
	SvcSearch   = "im-search"
)

// Service is one micro service: the ops of one domain, hosted by the worker
// under the domain's name (FUNCTIONS=account,message).
type Service struct {
	Name   string
	Domain string
}

// Services lists every service. Each op's Service is one of these; the worker
// checks at start-up that each domain serves exactly its service's ops.
var Services = []Service{
	{SvcAccount, "account"},
	{SvcFriend, "friend"},
	{SvcGroup, "group"},
	{SvcMessage, "message"},
	{SvcConv, "conv"},
	{SvcFile, "file"},
	{SvcFav, "fav"},
	{SvcPush, "push"},
	{SvcAdmin, "admin"},
	{SvcRisk, "risk"},
	{SvcSettings, "settings"},
	{SvcSearch, "search"},
}

// ServiceOf returns the service of a domain.
func ServiceOf(domain string) (Service, bool) {
	for _, s := range Services {
		if s.Domain == domain {
			return s, true
		}
	}
	return Service{}, false
}

// ByService lists the ops of service name, in table order.
func ByService(name string) []Op {
	var out []Op
	for _, o := range All {
		if o.Service == name {
			out = append(out, o)
		}
	}
	return out
}

// All is the table. docs/protocol.md documents each entry.
var All = []Op{
	{Name: "account.register", Service: SvcAccount, Access: Public, Routes: []Route{{Method: "POST", Path: "/api/v1/users/register"}}},
	{Name: "account.login", Service: SvcAccount, Access: Public, Routes: []Route{{Method: "POST", Path: "/api/v1/users/login"}}},
	{Name: "account.refresh", Service: SvcAccount, Access: Public, Routes: []Route{{Method: "POST", Path: "/api/v1/users/refresh"}}},
	{Name: "account.logout", Service: SvcAccount, Routes: []Route{{Method: "POST", Path: "/api/v1/users/logout"}}},
	{Name: "account.profile.get", Service: SvcAccount, Routes: []Route{{Method: "GET", Path: "/api/v1/users/{user_id}", Ints: []string{"user_id"}}}},
	{Name: "account.profile.update", Service: SvcAccount, Routes: []Route{{Method: "PUT", Path: "/api/v1/users/{user_id}/profile", Ints: []string{"user_id"}}}},
	{Name: "account.devices", Service: SvcAccount, Routes: []Route{{Method: "GET", Path: "/api/v1/users/{user_id}/devices", Ints: []string{"user_id"}}}},
	{Name: "account.device.logout", Service: SvcAccount, Routes: []Route{{Method: "POST", Path: "/api/v1/users/me/devices/{device_id}/logout"}}},
	{Name: "account.logout.all", Service: SvcAccount, Routes: []Route{{Method: "POST", Path: "/api/v1/users/me/logout-all"}}},
	{Name: "account.password.change", Service: SvcAccount, Routes: []Route{{Method: "PUT", Path: "/api/v1/users/me/password"}}},
	{Name: "account.delete", Service: SvcAccount, Routes: []Route{{Method: "POST", Path: "/api/v1/users/me/delete"}}},
	{Name: "presence.get", Service: SvcAccount, Routes: []Route{{Method: "POST", Path: "/api/v1/users/presence"}}},
	{Name: "presence.set", Service: SvcAccount},
	{Name: "session.connect", Service: SvcAccount, Access: Internal},
	{Name: "session.disconnect", Service: SvcAccount, Access: Internal},
	{Name: "session.touch", Service: SvcAccount, Access: Internal},
	{Name: "session.check", Service: SvcAccount, Access: Internal},
	{Name: "session.groups", Service: SvcAccount, Access: Internal},

	{Name: "user.lookup", Service: SvcFriend, Routes: []Route{{Method: "GET", Path: "/api/v1/users/lookup"}}},
	{Name: "account.privacy.get", Service: SvcFriend, Routes: []Route{{Method: "GET", Path: "/api/v1/users/me/privacy"}}},
	{Name: "account.privacy.set", Service: SvcFriend, Routes: []Route{{Method: "PUT", Path: "/api/v1/users/me/privacy"}}},
	{Name: "friend.request", Service: SvcFriend, Routes: []Route{{Method: "POST", Path: "/api/v1/social/friends/request"}}},
	{Name: "friend.respond", Service: SvcFriend, Routes: []Route{{Method: "PUT", Path: "/api/v1/social/friends/request/{request_id}", Ints: []string{"request_id"}}}},
	{Name: "friend.requests", Service: SvcFriend, Routes: []Route{{Method: "GET", Path: "/api/v1/social/friends/requests", Ints: []string{"before", "limit"}}}},
	{Name: "friend.list", Service: SvcFriend, Routes: []Route{{Method: "GET", Path: "/api/v1/social/friends", Ints: []string{"after", "limit"}}}},
	{Name: "friend.delete", Service: SvcFriend, Routes: []Route{{Method: "DELETE", Path: "/api/v1/social/friends/{user_id}", Ints: []string{"user_id"}}}},
	{Name: "friend.remark", Service: SvcFriend, Routes: []Route{{Method: "PUT", Path: "/api/v1/social/friends/{user_id}/remark", Ints: []string{"user_id"}}}},
	{Name: "block.add", Service: SvcFriend, Routes: []Route{{Method: "POST", Path: "/api/v1/social/blocks"}}},
	{Name: "block.remove", Service: SvcFriend, Routes: []Route{{Method: "DELETE", Path: "/api/v1/social/blocks/{user_id}", Ints: []string{"user_id"}}}},
	{Name: "block.list", Service: SvcFriend, Routes: []Route{{Method: "GET", Path: "/api/v1/social/blocks", Ints: []string{"after", "limit"}}}},

	{Name: "group.create", Service: SvcGroup, Routes: []Route{{Method: "POST", Path: "/api/v1/social/groups"}}},
	{Name: "group.list", Service: SvcGroup, Routes: []Route{{Method: "GET", Path: "/api/v1/social/groups", Ints: []string{"after", "limit"}}}},
	{Name: "group.get", Service: SvcGroup, Routes: []Route{{Method: "GET", Path: "/api/v1/social/groups/{group_id}", Ints: gid}}},
	{Name: "group.update", Service: SvcGroup, Routes: []Route{{Method: "PUT", Path: "/api/v1/social/groups/{group_id}", Ints: gid}}},
	{Name: "group.dismiss", Service: SvcGroup, Routes: []Route{{Method: "DELETE", Path: "/api/v1/social/groups/{group_id}", Ints: gid}}},
	{Name: "group.invite", Service: SvcGroup, Routes: []Route{{Method: "POST", Path: "/api/v1/social/groups/{group_id}/members", Ints: gid}}},
	{Name: "group.members", Service: SvcGroup, Routes: []Route{{Method: "GET", Path: "/api/v1/social/groups/{group_id}/members", Ints: []string{"group_id", "after", "limit"}}}},
	{Name: "group.kick", Service: SvcGroup, Routes: []Route{{Method: "DELETE", Path: "/api/v1/social/groups/{group_id}/members/{user_id}", Ints: gidUser}}},
	{Name: "group.role.set", Service: SvcGroup, Routes: []Route{{Method: "PUT", Path: "/api/v1/social/groups/{group_id}/members/{user_id}/role", Ints: gidUser}}},
	{Name: "group.mute", Service: SvcGroup, Routes: []Route{{Method: "PUT", Path: "/api/v1/social/groups/{group_id}/members/{user_id}/mute", Ints: gidUser}}},
	{Name: "group.mute.all", Service: SvcGroup, Routes: []Route{{Method: "PUT", Path: "/api/v1/social/groups/{group_id}/mute", Ints: gid}}},
	{Name: "group.transfer", Service: SvcGroup, Routes: []Route{{Method: "POST", Path: "/api/v1/social/groups/{group_id}/transfer", Ints: gid}}},
	{Name: "group.join", Service: SvcGroup, Routes: []Route{{Method: "POST", Path: "/api/v1/social/groups/{group_id}/join", Ints: gid}}},
	{Name: "group.join.requests", Service: SvcGroup, Routes: []Route{{Method: "GET", Path: "/api/v1/social/groups/{group_id}/join-requests", Ints: gid}}},
	{Name: "group.join.respond", Service: SvcGroup, Routes: []Route{{Method: "PUT", Path: "/api/v1/social/groups/{group_id}/join-requests/{request_id}", Ints: []string{"group_id", "request_id"}}}},
	{Name: "group.leave", Service: SvcGroup, Routes: []Route{{Method: "POST", Path: "/api/v1/social/groups/{group_id}/leave", Ints: gid}}},
	{Name: "group.announce", Service: SvcGroup, Routes: []Route{{Method: "POST", Path: "/api/v1/social/groups/{group_id}/announcements", Ints: gid}}},
	{Name: "group.announcements", Service: SvcGroup, Routes: []Route{{Method: "GET", Path: "/api/v1/social/groups/{group_id}/announcements", Ints: []string{"group_id", "before", "limit"}}}},

	{Name: "msg.send", Service: SvcMessage, Routes: []Route{{Method: "POST", Path: "/api/v1/messages"}}},
	{Name: "msg.history", Service: SvcMessage, Routes: []Route{{Method: "GET", Path: "/api/v1/messages/conversations/{conv_id}/history", Ints: []string{"before", "after", "limit"}}}},
	{Name: "msg.recall", Service: SvcMessage, Routes: []Route{{Method: "POST", Path: "/api/v1/messages/{id}/recall"}}},
	{Name: "msg.edit", Service: SvcMessage, Routes: []Route{{Method: "PUT", Path: "/api/v1/messages/{id}/edit"}}},
	{Name: "msg.react", Service: SvcMessage, Routes: []Route{{Method: "POST", Path: "/api/v1/messages/{id}/reactions"}}},
	{Name: "msg.receipts", Service: SvcMessage, Routes: []Route{{Method: "GET", Path: "/api/v1/messages/{id}/receipts", Ints: []string{"after", "limit"}}}},
	{Name: "msg.typing", Service: SvcMessage, Routes: []Route{{Method: "POST", Path: "/api/v1/messages/typing"}}},

	{Name: "conv.list", Service: SvcConv, Routes: []Route{{Method: "GET", Path: "/api/v1/social/conversations", Ints: []string{"offset", "limit"}}}},
	{Name: "conv.pin", Service: SvcConv, Routes: []Route{{Method: "PUT", Path: "/api/v1/social/conversations/{conv_id}/pin"}}},
	{Name: "conv.mute", Service: SvcConv, Routes: []Route{{Method: "PUT", Path: "/api/v1/social/conversations/{conv_id}/mute"}}},
	{Name: "conv.hide", Service: SvcConv, Routes: []Route{{Method: "DELETE", Path: "/api/v1/social/conversations/{conv_id}"}}},
	{Name: "conv.read", Service: SvcConv, Routes: []Route{{Method: "POST", Path: "/api/v1/social/conversations/{conv_id}/read", Ints: []string{"seq"}}}},
	{Name: "msg.sync", Service: SvcMessage, Routes: []Route{{Method: "POST", Path: "/api/v1/messages/sync"}}},

	{Name: "file.upload.begin", Service: SvcFile, Routes: []Route{{Method: "POST", Path: "/api/v1/content/files/upload"}}},
	{Name: "file.upload.complete", Service: SvcFile, Routes: []Route{{Method: "POST", Path: "/api/v1/content/files/{file_id}/complete"}}},
	{Name: "file.get", Service: SvcFile, Routes: []Route{{Method: "GET", Path: "/api/v1/content/files/{file_id}"}}},
	{Name: "file.list", Service: SvcFile, Routes: []Route{{Method: "GET", Path: "/api/v1/content/files", Ints: []string{"before", "limit"}}}},

	{Name: "fav.add", Service: SvcFav, Routes: []Route{{Method: "POST", Path: "/api/v1/content/favorites"}}},
	{Name: "fav.list", Service: SvcFav, Routes: []Route{{Method: "GET", Path: "/api/v1/content/favorites", Ints: []string{"before", "limit"}}}},
	{Name: "fav.remove", Service: SvcFav, Routes: []Route{{Method: "DELETE", Path: "/api/v1/content/favorites/{fav_id}", Ints: []string{"fav_id"}}}},

	{Name: "push.register", Service: SvcPush, Routes: []Route{{Method: "POST", Path: "/api/v1/push/tokens"}}},
	{Name: "push.unregister", Service: SvcPush, Routes: []Route{{Method: "DELETE", Path: "/api/v1/push/tokens"}}},
	{Name: "push.settings.get", Service: SvcPush, Routes: []Route{{Method: "GET", Path: "/api/v1/push/settings"}}},
	{Name: "push.settings.set", Service: SvcPush, Routes: []Route{{Method: "PUT", Path: "/api/v1/push/settings"}}},

	// The back office (functions/admin): operators log in with admin.login and
	// call the rest with an operator token on /api/v1/admin/... only.
	{Name: "admin.login", Service: SvcAdmin, Access: Public, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/login"}}},
	{Name: "admin.logout", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/logout"}}},
	{Name: "admin.me", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/me"}}},
	{Name: "admin.totp.setup", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/me/totp"}}},
	{Name: "admin.totp.enable", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "PUT", Path: "/api/v1/admin/me/totp"}}},
	{Name: "admin.operators.list", Service: SvcAdmin, Access: Admin, Role: RoleSuperadmin, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/operators", Ints: []string{"after", "limit"}}}},
	{Name: "admin.operators.create", Service: SvcAdmin, Access: Admin, Role: RoleSuperadmin, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/operators"}}},
	{Name: "admin.operators.update", Service: SvcAdmin, Access: Admin, Role: RoleSuperadmin, Routes: []Route{{Method: "PUT", Path: "/api/v1/admin/operators/{operator_id}", Ints: []string{"operator_id"}}}},
	{Name: "admin.audit.list", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/audit", Ints: []string{"before", "limit", "since", "until"}}}},
	{Name: "admin.users.list", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/users", Ints: []string{"after", "limit"}}}},
	{Name: "admin.users.get", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/users/{user_id}", Ints: []string{"user_id"}}}},
	{Name: "admin.users.ban", Service: SvcAdmin, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/users/{user_id}/ban", Ints: []string{"user_id"}}}},
	{Name: "admin.users.unban", Service: SvcAdmin, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/users/{user_id}/unban", Ints: []string{"user_id"}}}},
	{Name: "admin.users.logout", Service: SvcAdmin, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/users/{user_id}/logout", Ints: []string{"user_id"}}}},
	{Name: "admin.users.password.reset", Service: SvcAdmin, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/users/{user_id}/password", Ints: []string{"user_id"}}}},
	{Name: "admin.groups.list", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/groups", Ints: []string{"after", "limit"}}}},
	{Name: "admin.groups.get", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/groups/{group_id}", Ints: []string{"group_id", "after", "limit"}}}},
	{Name: "admin.groups.dismiss", Service: SvcAdmin, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/groups/{group_id}/dismiss", Ints: gid}}},
	{Name: "admin.groups.mute", Service: SvcAdmin, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "PUT", Path: "/api/v1/admin/groups/{group_id}/mute", Ints: gid}}},
	{Name: "admin.groups.transfer", Service: SvcAdmin, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/groups/{group_id}/transfer", Ints: gid}}},
	{Name: "admin.monitoring.metrics", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/monitoring/metrics"}}},
	{Name: "admin.monitoring.health", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/monitoring/health"}}},
	{Name: "admin.alerts.list", Service: SvcAdmin, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/monitoring/alerts"}}},
	{Name: "admin.alerts.set", Service: SvcAdmin, Access: Admin, Role: RoleSuperadmin, Routes: []Route{{Method: "PUT", Path: "/api/v1/admin/monitoring/alerts"}}},
	{Name: "admin.alerts.delete", Service: SvcAdmin, Access: Admin, Role: RoleSuperadmin, Routes: []Route{{Method: "DELETE", Path: "/api/v1/admin/monitoring/alerts/{id}", Ints: []string{"id"}}}},
	// Risk control: users report; operators keep the sensitive words and work the
	// review queue.
	{Name: "report.submit", Service: SvcRisk, Routes: []Route{{Method: "POST", Path: "/api/v1/reports"}}},
	{Name: "admin.words.list", Service: SvcRisk, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/words", Ints: []string{"after", "limit"}}}},
	{Name: "admin.words.add", Service: SvcRisk, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/words"}}},
	{Name: "admin.words.remove", Service: SvcRisk, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "DELETE", Path: "/api/v1/admin/words/{id}", Ints: []string{"id"}}}},
	{Name: "admin.review.list", Service: SvcRisk, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/review", Ints: []string{"after", "limit"}}}},
	{Name: "admin.review.approve", Service: SvcRisk, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/review/{id}/approve", Ints: []string{"id"}}}},
	{Name: "admin.review.delete", Service: SvcRisk, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "POST", Path: "/api/v1/admin/review/{id}/delete", Ints: []string{"id"}}}},

	// Runtime settings: config items, feature flags, per-user send rate overrides.
	// Edges load them with settings.snapshot, then follow im.evt.config.changed.
	{Name: "settings.snapshot", Service: SvcSettings, Access: Internal},
	{Name: "admin.config.list", Service: SvcSettings, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/config/items"}}},
	{Name: "admin.config.set", Service: SvcSettings, Access: Admin, Role: RoleSuperadmin, Routes: []Route{{Method: "PUT", Path: "/api/v1/admin/config/items"}}},
	{Name: "admin.features.list", Service: SvcSettings, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/features"}}},
	{Name: "admin.features.get", Service: SvcSettings, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/features/{name}"}}},
	{Name: "admin.features.set", Service: SvcSettings, Access: Admin, Role: RoleSuperadmin, Routes: []Route{{Method: "PUT", Path: "/api/v1/admin/features/{name}"}}},
	{Name: "admin.rate.list", Service: SvcSettings, Access: Admin, Role: RoleAuditor, Routes: []Route{{Method: "GET", Path: "/api/v1/admin/rate/overrides", Ints: []string{"after", "limit"}}}},
	{Name: "admin.rate.set", Service: SvcSettings, Access: Admin, Role: RoleOperator, Routes: []Route{{Method: "PUT", Path: "/api/v1/admin/rate/overrides/{user_id}", Ints: []string{"user_id"}}}},
	{Name: "msg.search", Service: SvcSearch, Routes: []Route{{Method: "GET", Path: "/api/v1/search/messages", Ints: []string{"sender", "since", "until", "offset", "limit"}}}},
	{Name: "user.search", Service: SvcSearch, Routes: []Route{{Method: "GET", Path: "/api/v1/search/users", Ints: []string{"limit"}}}},
	{Name: "group.search", Service: SvcSearch, Routes: []Route{{Method: "GET", Path: "/api/v1/search/groups", Ints: []string{"limit"}}}},
	{Name: "file.search", Service: SvcSearch, Routes: []Route{{Method: "GET", Path: "/api/v1/search/files", Ints: []string{"limit"}}}},
	{Name: "fav.search", Service: SvcSearch, Routes: []Route{{Method: "GET", Path: "/api/v1/search/favorites", Ints: []string{"limit"}}}},
}

// Path parameters that groups' routes share.
var (
	gid     = []string{"group_id"}
	gidUser = []string{"group_id", "user_id"}
)

var byName = func() map[string]Op {
	m := make(map[string]Op, len(All))
	for _, o := range All {
		if _, dup := m[o.Name]; dup {
			panic("op: duplicate op " + o.Name)
		}
		if !slices.ContainsFunc(Services, func(s Service) bool { return s.Name == o.Service }) {
			panic("op: " + o.Name + " names unknown service " + o.Service)
		}
		m[o.Name] = o
	}
	return m
}()

// Lookup finds an op by name.
func Lookup(name string) (Op, bool) {
	o, ok := byName[name]
	return o, ok
}

// Must returns the op named name and panics if the table lacks it: a programming
// error caught at start-up, when a domain registers its handlers.
func Must(name string) Op {
	o, ok := byName[name]
	if !ok {
		panic("op: unknown op " + name)
	}
	return o
}
