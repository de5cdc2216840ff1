package admin

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"natter/shared/db"
	"natter/shared/imerr"
	"natter/shared/validate"
)

// Alert states: ok; pending while the rule's condition holds for less than its
// duration; firing once it held for the whole duration (the webhook hears it, and
// again when it resolves back to ok).
const (
	StateOK      = "ok"
	StatePending = "pending"
	StateFiring  = "firing"
)

// Rule is an alert rule and its state.
type Rule struct {
	ID        int64   `json:"id"`
	Name      string  `json:"name"`
	Metric    string  `json:"metric"`
	Op        string  `json:"op"` // ">" or "<"
	Threshold float64 `json:"threshold"`
	DurationS int     `json:"duration_s"`
	Webhook   string  `json:"webhook,omitempty"`
	Enabled   bool    `json:"enabled"`
	State     string  `json:"state"`
	Since     int64   `json:"since,omitempty"` // unix ms the state began
	Value     float64 `json:"value"`           // at the last evaluation
}

// RuleReq is admin.alerts.set: a new rule (no id) or a change to rule id.
type RuleReq struct {
	ID        int64   `json:"id,omitempty"`
	Name      string  `json:"name"`
	Metric    string  `json:"metric"`
	Op        string  `json:"op"`
	Threshold float64 `json:"threshold"`
	DurationS int     `json:"duration_s"`
	Webhook   string  `json:"webhook,omitempty"`
	Enabled   *bool   `json:"enabled,omitempty"` // default true
}

func (r *RuleReq) Validate() error {
	if r.Name == "" {
		return errors.New("name required")
	}
	if err := validate.Text("name", r.Name, 64); err != nil {
		return err
	}
	if !validMetric(r.Metric) {
		return errors.New("metric: online_users, connections, msgs_per_sec, errors_per_sec, p95_ms, p95_ms:<op> or targets_down")
	}
	if r.Op != ">" && r.Op != "<" {
		return errors.New(`op: ">" or "<"`)
	}
	if r.DurationS < 0 || r.DurationS > 86400 {
		return errors.New("duration_s: 0 to 86400")
	}
	if r.Webhook != "" {
		u, err := url.Parse(r.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(r.Webhook) > 512 {
			return errors.New("webhook: an http(s) URL of at most 512 bytes")
		}
	}
	return nil
}

// RulesResp is admin.alerts.list's answer.
type RulesResp struct {
	Rules []Rule `json:"rules"`
}

const ruleColumns = "id, name, metric, op, threshold, duration_s, webhook, enabled, state, since, value"

func scanRule(sc interface{ Scan(...any) error }) (Rule, error) {
	var r Rule
	var since sql.NullTime
	err := sc.Scan(&r.ID, &r.Name, &r.Metric, &r.Op, &r.Threshold, &r.DurationS, &r.Webhook, &r.Enabled, &r.State, &since, &r.Value)
	if since.Valid {
		r.Since = ms(since.Time)
	}
	return r, err
}

// maxRules bounds the rule table (each is evaluated every sample).
const maxRules = 100

func (s *Service) rules(ctx context.Context) ([]Rule, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+ruleColumns+" FROM alert_rules ORDER BY id LIMIT ?", maxRules)
	if err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	defer rows.Close()
	out := []Rule{}
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *Service) alertsList(ctx context.Context, _ actor, _ Empty) (RulesResp, error) {
	r, err := s.rules(ctx)
	return RulesResp{Rules: r}, err
}

func (s *Service) alertsSet(ctx context.Context, a actor, r RuleReq) (Rule, error) {
	enabled := r.Enabled == nil || *r.Enabled
	var before any
	var id int64
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if r.ID == 0 {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM alert_rules").Scan(&n); err != nil {
				return err
			}
			if n >= maxRules {
				return imerr.New(imerr.Conflict, "at most %d alert rules", maxRules)
			}
			res, err := tx.ExecContext(ctx, "INSERT INTO alert_rules (name, metric, op, threshold, duration_s, webhook, enabled) VALUES (?, ?, ?, ?, ?, ?, ?)",
				r.Name, r.Metric, r.Op, r.Threshold, r.DurationS, r.Webhook, enabled)
			if db.IsDuplicate(err) {
				return imerr.New(imerr.Conflict, "a rule named %q exists", r.Name)
			}
			if err != nil {
				return err
			}
			id, err = res.LastInsertId()
			return err
		}
		old, err := scanRule(tx.QueryRowContext(ctx, "SELECT "+ruleColumns+" FROM alert_rules WHERE id = ? FOR UPDATE", r.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return imerr.New(imerr.NotFound, "alert rule %d not found", r.ID)
		}
		if err != nil {
			return err
		}
		before, id = old, r.ID
		// A changed rule starts over from ok.
		_, err = tx.ExecContext(ctx, "UPDATE alert_rules SET name = ?, metric = ?, op = ?, threshold = ?, duration_s = ?, webhook = ?, enabled = ?, state = 'ok', since = NULL WHERE id = ?",
			r.Name, r.Metric, r.Op, r.Threshold, r.DurationS, r.Webhook, enabled, r.ID)
		if db.IsDuplicate(err) {
			return imerr.New(imerr.Conflict, "a rule named %q exists", r.Name)
		}
		return err
	})
	if err != nil {
		return Rule{}, fmt.Errorf("set alert rule: %w", err)
	}
	rule, err := scanRule(s.db.QueryRowContext(ctx, "SELECT "+ruleColumns+" FROM alert_rules WHERE id = ?", id))
	if err != nil {
		return Rule{}, err
	}
	rec := byOperator(a, "alert.rule_set", "alert", id)
	rec.before, rec.after = before, rule
	return rule, s.audit(ctx, rec)
}

// RuleIDReq names an alert rule.
type RuleIDReq struct {
	ID int64 `json:"id"`
}

func (r *RuleIDReq) Validate() error { return validID("id", r.ID) }

func (s *Service) alertsDelete(ctx context.Context, a actor, r RuleIDReq) (Empty, error) {
	old, err := scanRule(s.db.QueryRowContext(ctx, "SELECT "+ruleColumns+" FROM alert_rules WHERE id = ?", r.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return Empty{}, nil // deleted already: a retry
	}
	if err != nil {
		return Empty{}, err
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM alert_rules WHERE id = ?", r.ID); err != nil {
		return Empty{}, fmt.Errorf("delete alert rule: %w", err)
	}
	rec := byOperator(a, "alert.rule_delete", "alert", r.ID)
	rec.before = old
	return Empty{}, s.audit(ctx, rec)
}

// evaluate moves each enabled rule's state by the latest metrics: one worker
// per sample (a Redis lock), the state in MySQL. Each change is audited; firing
// and resolving call the rule's webhook.
func (s *Service) evaluate(ctx context.Context, m Metrics) {
	ok, err := s.rdb.SetNX(ctx, "admin:alerts:eval", s.cfg.SampleEvery.String(), s.cfg.SampleEvery*9/10).Result()
	if err != nil || !ok {
		return
	}
	rules, err := s.rules(ctx)
	if err != nil {
		s.log.Warn().Err(err).Msg("alert rules")
		return
	}
	now := s.now()
	for _, r := range rules {
		if !r.Enabled {
			continue
		}
		v, _ := metricValue(m, r.Metric)
		breach := (r.Op == ">" && v > r.Threshold) || (r.Op == "<" && v < r.Threshold)
		next := r.State
		switch {
		case !breach:
			next = StateOK
		case r.State == StateOK && r.DurationS > 0:
			next = StatePending
		case r.State == StateOK || (r.State == StatePending && now.Sub(time.UnixMilli(r.Since)) >= time.Duration(r.DurationS)*time.Second):
			next = StateFiring
		}
		if next == r.State {
			if _, err := s.db.ExecContext(ctx, "UPDATE alert_rules SET value = ? WHERE id = ?", v, r.ID); err != nil {
				s.log.Warn().Err(err).Msg("alert value")
			}
			continue
		}
		res, err := s.db.ExecContext(ctx, "UPDATE alert_rules SET state = ?, since = ?, value = ? WHERE id = ? AND state = ?", next, now.UTC(), v, r.ID, r.State)
		if err != nil {
			s.log.Warn().Err(err).Msg("alert state")
			continue
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // changed meanwhile (an edit)
		}
		err = s.audit(ctx, record{actorKind: KindSystem, action: "alert." + next, targetKind: "alert", targetID: strconv.FormatInt(r.ID, 10),
			before: map[string]any{"state": r.State}, after: map[string]any{"state": next, "value": v},
			detail: fmt.Sprintf("%s: %s %s %g (value %g)", r.Name, r.Metric, r.Op, r.Threshold, v)})
		if err != nil {
			s.log.Error().Err(err).Msg("audit alert state")
		}
		if r.Webhook != "" && (next == StateFiring || (next == StateOK && r.State == StateFiring)) {
			s.notify(ctx, r, next, v, now)
		}
	}
}

// AlertEvent is what a rule's webhook receives (POST, JSON).
type AlertEvent struct {
	Rule      string  `json:"rule"`
	RuleID    int64   `json:"rule_id"`
	State     string  `json:"state"` // firing, or ok when it resolved
	Metric    string  `json:"metric"`
	Op        string  `json:"op"`
	Threshold float64 `json:"threshold"`
	Value     float64 `json:"value"`
	At        int64   `json:"at"`
}

func (s *Service) notify(ctx context.Context, r Rule, state string, v float64, now time.Time) {
	b, _ := json.Marshal(AlertEvent{Rule: r.Name, RuleID: r.ID, State: state, Metric: r.Metric, Op: r.Op, Threshold: r.Threshold, Value: v, At: ms(now)})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Webhook, bytes.NewReader(b))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode >= 300 {
			err = fmt.Errorf("webhook answered %s", resp.Status)
		}
	}
	if err != nil {
		s.log.Warn().Err(err).Str("rule", r.Name).Msg("alert webhook")
	}
}

// Health is admin.monitoring.health's answer.
type Health struct {
	NATS     Check           `json:"nats"`
	Database Check           `json:"database"`
	Redis    Check           `json:"redis"`
	Targets  map[string]bool `json:"targets"`
}

// Check is one dependency's health.
type Check struct {
	OK    bool    `json:"ok"`
	Ms    float64 `json:"ms"`
	Error string  `json:"error,omitempty"`
}

func timed(fn func() error) Check {
	start := time.Now()
	err := fn()
	c := Check{OK: err == nil, Ms: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		c.Error = err.Error()
	}
	return c
}

func (s *Service) health(ctx context.Context, _ actor, _ Empty) (Health, error) {
	h := Health{Targets: s.current().Targets}
	h.Database = timed(func() error { return s.db.PingContext(ctx) })
	h.Redis = timed(func() error { return s.rdb.Ping(ctx).Err() })
	h.NATS = timed(func() error {
		if s.nc == nil {
			return errors.New("no connection")
		}
		_, err := s.nc.RTT()
		return err
	})
	return h, nil
}

func (s *Service) metrics(_ context.Context, _ actor, _ Empty) (Metrics, error) {
	return s.current(), nil
}

// monitor samples and evaluates every SampleEvery until ctx ends.
func (s *Service) monitor(ctx context.Context) {
	t := time.NewTicker(s.cfg.SampleEvery)
	defer t.Stop()
	for {
		s.samples.add(s.scrape(ctx))
		s.evaluate(ctx, s.current())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
