package admin

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Actor kinds of audit entries.
const (
	KindOperator = "operator"
	KindUser     = "user"
	KindSystem   = "system"
	KindGroup    = "group"
)

// Entry is one row of the audit log: who (actor), did what (action), to what
// (target), the state before and after, from where and when.
type Entry struct {
	ID         int64           `json:"id"`
	At         int64           `json:"at"` // unix ms
	ActorKind  string          `json:"actor_kind"`
	ActorID    int64           `json:"actor_id"`
	ActorName  string          `json:"actor_name,omitempty"`
	Action     string          `json:"action"`
	TargetKind string          `json:"target_kind,omitempty"`
	TargetID   string          `json:"target_id,omitempty"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	Detail     string          `json:"detail,omitempty"`
	IP         string          `json:"ip,omitempty"`
}

// record is what a caller gives audit: before and after are marshalled.
type record struct {
	actorKind  string
	actorID    int64
	actorName  string
	action     string
	targetKind string
	targetID   string
	before     any
	after      any
	detail     string
	ip         string
	at         time.Time
}

// byOperator starts a record of an action of a.
func byOperator(a actor, action, targetKind string, targetID int64) record {
	return record{actorKind: KindOperator, actorID: a.ID, actorName: a.Username, action: action,
		targetKind: targetKind, targetID: strconv.FormatInt(targetID, 10), ip: a.IP}
}

// audit appends r to the audit log. An action whose entry cannot be written
// answers an error (the action is done: a retry is idempotent and writes it).
func (s *Service) audit(ctx context.Context, r record) error {
	at := r.at
	if at.IsZero() {
		at = s.now()
	}
	js := func(v any) (sql.NullString, error) {
		if v == nil {
			return sql.NullString{}, nil
		}
		b, err := json.Marshal(v)
		return sql.NullString{String: string(b), Valid: true}, err
	}
	before, err := js(r.before)
	if err != nil {
		return fmt.Errorf("audit before: %w", err)
	}
	after, err := js(r.after)
	if err != nil {
		return fmt.Errorf("audit after: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO audit_log (at, actor_kind, actor_id, actor_name, action, target_kind, target_id, before_json, after_json, detail, ip)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, at.UTC(), r.actorKind, r.actorID, trunc(r.actorName, 64), r.action, r.targetKind, trunc(r.targetID, 64),
		before, after, trunc(r.detail, 512), trunc(r.ip, 64))
	if err != nil {
		return fmt.Errorf("audit %s: %w", r.action, err)
	}
	return nil
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// auditList answers admin.audit.list: newest first, each filter an index.
func (s *Service) auditList(ctx context.Context, _ actor, r AuditReq) (AuditResp, error) {
	limit := min(max(r.Limit, 0), maxPage)
	if limit == 0 {
		limit = 50
	}
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if r.ActorKind != "" {
		add("actor_kind = ?", r.ActorKind)
	}
	if r.ActorID > 0 {
		add("actor_id = ?", r.ActorID)
	}
	if r.TargetKind != "" {
		add("target_kind = ?", r.TargetKind)
	}
	if r.TargetID != "" {
		add("target_id = ?", r.TargetID)
	}
	if r.Action != "" {
		add("action = ?", r.Action)
	}
	if r.Since > 0 {
		add("at >= ?", time.UnixMilli(r.Since).UTC())
	}
	if r.Until > 0 {
		add("at < ?", time.UnixMilli(r.Until).UTC())
	}
	if r.Before > 0 {
		add("id < ?", r.Before)
	}
	q := "SELECT id, at, actor_kind, actor_id, actor_name, action, target_kind, target_id, before_json, after_json, detail, ip FROM audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	rows, err := s.db.QueryContext(ctx, q, append(args, limit+1)...)
	if err != nil {
		return AuditResp{}, fmt.Errorf("audit list: %w", err)
	}
	defer rows.Close()
	out := AuditResp{Entries: []Entry{}}
	for rows.Next() {
		var e Entry
		var at time.Time
		var before, after sql.NullString
		if err := rows.Scan(&e.ID, &at, &e.ActorKind, &e.ActorID, &e.ActorName, &e.Action, &e.TargetKind, &e.TargetID, &before, &after, &e.Detail, &e.IP); err != nil {
			return AuditResp{}, err
		}
		e.At = at.UnixMilli()
		if before.Valid {
			e.Before = json.RawMessage(before.String)
		}
		if after.Valid {
			e.After = json.RawMessage(after.String)
		}
		if len(out.Entries) == limit {
			out.HasMore = true
			break
		}
		out.Entries = append(out.Entries, e)
	}
	return out, rows.Err()
}

// operator is the actor of operator id, for actions other domains report.
func (s *Service) operator(ctx context.Context, id int64) (actor, error) {
	a := actor{ID: id}
	err := s.db.QueryRowContext(ctx, "SELECT username, role FROM operators WHERE id = ?", id).Scan(&a.Username, &a.Role)
	if errors.Is(err, sql.ErrNoRows) {
		return a, nil // an id the log still records
	}
	return a, err
}

// RecordOperator appends an operator's action that another domain performed
// (risk control, runtime settings: the worker adapts their Auditor to this).
// target is "<kind>:<id>" ("word:12", "config:message.recall_window").
func (s *Service) RecordOperator(ctx context.Context, operator int64, action, target string, before, after any, ip string, at time.Time) error {
	a, err := s.operator(ctx, operator)
	if err != nil {
		return err
	}
	kind, id, _ := strings.Cut(target, ":")
	return s.audit(ctx, record{actorKind: KindOperator, actorID: operator, actorName: a.Username, action: action,
		targetKind: trunc(kind, 16), targetID: id, before: before, after: after, ip: ip, at: at})
}
