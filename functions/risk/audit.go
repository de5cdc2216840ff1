package risk

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"natter/shared/endpoint"
)

// AuditEntry is one operator action for the audit log: who, what, on what,
// before and after, from where, when.
type AuditEntry struct {
	Actor  int64  // the operator's id
	Role   string // the operator's role
	Action string // the op, e.g. admin.words.add
	Target string // e.g. "word:12", "review:7", "config:message.recall_window"
	Before any
	After  any
	IP     string
	At     time.Time
}

// Entry is the AuditEntry of action on target by caller c.
func Entry(c endpoint.Caller, action, target string, before, after any) AuditEntry {
	return AuditEntry{Actor: c.UserID, Role: c.Role, Action: action, Target: target, Before: before, After: after, IP: c.ClientIP, At: time.Now()}
}

// Auditor records operator actions. The audit log (its table, queries and
// retention) belongs to the admin domain; until it is wired in, LogAuditor
// writes the entries to the worker's log.
type Auditor interface {
	Record(ctx context.Context, e AuditEntry) error
}

// LogAuditor writes audit entries as log lines (level info, message "audit").
type LogAuditor struct{ Log zerolog.Logger }

// Record logs e.
func (a LogAuditor) Record(_ context.Context, e AuditEntry) error {
	a.Log.Info().Int64("actor", e.Actor).Str("role", e.Role).Str("action", e.Action).Str("target", e.Target).
		Interface("before", e.Before).Interface("after", e.After).Str("ip", e.IP).Time("at", e.At).Msg("audit")
	return nil
}

// Record audits e, logging a failure: the action already happened.
func Record(ctx context.Context, a Auditor, log zerolog.Logger, e AuditEntry) {
	if a == nil {
		return
	}
	if err := a.Record(ctx, e); err != nil {
		log.Error().Err(err).Str("action", e.Action).Str("target", e.Target).Msg("audit record")
	}
}
