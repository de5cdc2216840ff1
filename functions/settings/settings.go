// Package settings is the runtime-settings domain (service im-settings): config
// items, feature flags and per-user send rate overrides, stored in MySQL and
// announced on im.evt.config.changed so that every worker's and edge's
// dynconf.Live follows within a moment; settings.snapshot gives an edge the
// whole configuration at start.
package settings

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"natter/functions/risk"
	"natter/shared/db"
	"natter/shared/dynconf"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/validate"
)

// Deps are what the domain needs.
type Deps struct {
	DB *sql.DB
	NC *nats.Conn
	// Live is this worker's view, updated at once by its own changes (others
	// follow the event).
	Live    *dynconf.Live
	Auditor risk.Auditor
	Log     zerolog.Logger
}

// Service serves the settings endpoints.
type Service struct {
	db    *sql.DB
	nc    *nats.Conn
	live  *dynconf.Live
	audit risk.Auditor
	log   zerolog.Logger
	now   func() time.Time
}

// New returns the settings service.
func New(d Deps) *Service {
	return &Service{db: d.DB, nc: d.NC, live: d.Live, audit: d.Auditor, log: d.Log, now: time.Now}
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("admin.config.list", s.configList),
		endpoint.Handle("admin.config.set", s.configSet),
		endpoint.Handle("admin.features.list", s.featuresList),
		endpoint.Handle("admin.features.get", s.featuresGet),
		endpoint.Handle("admin.features.set", s.featuresSet),
		endpoint.Handle("admin.rate.list", s.rateList),
		endpoint.Handle("admin.rate.set", s.rateSet),
		endpoint.Handle("settings.snapshot", s.snapshot),
	}
}

// announce applies ch here and publishes it for every other worker and edge.
func (s *Service) announce(ctx context.Context, ch dynconf.Change) {
	ch.At = s.now().UnixMilli()
	if s.live != nil {
		s.live.Apply(ch)
	}
	if s.nc == nil {
		return
	}
	b, err := json.Marshal(ch)
	if err == nil {
		err = s.nc.Publish(dynconf.EvtChanged, b)
	}
	if err != nil {
		logging.From(ctx).Warn().Err(err).Msg("publish config changed")
	}
}

// ConfigItem is a config item as operators see it.
type ConfigItem struct {
	dynconf.Key
	Value     json.RawMessage `json:"value"` // null: the default
	UpdatedBy int64           `json:"updated_by,omitempty"`
	UpdatedAt int64           `json:"updated_at,omitempty"`
}

// ConfigListResp answers admin.config.list.
type ConfigListResp struct {
	Items []ConfigItem `json:"items"`
}

// Empty is a request or answer without content.
type Empty struct{}

func (s *Service) configList(ctx context.Context, _ endpoint.Caller, _ Empty) (ConfigListResp, error) {
	snap, err := dynconf.ReadDB(ctx, s.db, false)
	if err != nil {
		return ConfigListResp{}, err
	}
	out := ConfigListResp{Items: make([]ConfigItem, 0, len(dynconf.Keys))}
	for _, k := range dynconf.Keys {
		ci := ConfigItem{Key: k, Value: json.RawMessage("null")}
		for _, it := range snap.Items {
			if it.Name == k.Name {
				ci.Value, ci.UpdatedBy, ci.UpdatedAt = it.Value, it.UpdatedBy, it.UpdatedAt
			}
		}
		out.Items = append(out.Items, ci)
	}
	return out, nil
}

// ConfigSetReq is admin.config.set: a known item and a value of its type (null
// puts it back to its default).
type ConfigSetReq struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

func (r *ConfigSetReq) Validate() error {
	k, ok := dynconf.KeyOf(r.Name)
	if !ok {
		return fmt.Errorf("name: no config item %q", r.Name)
	}
	if len(r.Value) == 0 {
		return errors.New("value required (null for the default)")
	}
	if string(r.Value) == "null" {
		return nil
	}
	v, err := k.Parse(r.Value)
	if err != nil {
		return err
	}
	r.Value, _ = json.Marshal(canonical(v))
	return nil
}

// canonical is how a parsed value is stored (durations as Go strings).
func canonical(v any) any {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	return v
}

func (s *Service) configSet(ctx context.Context, c endpoint.Caller, r ConfigSetReq) (ConfigItem, error) {
	k, _ := dynconf.KeyOf(r.Name)
	var before json.RawMessage = json.RawMessage("null")
	var b string
	if err := s.db.QueryRowContext(ctx, "SELECT value FROM config_items WHERE name = ?", r.Name).Scan(&b); err == nil {
		before = json.RawMessage(b)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO config_items (name, value, updated_by, updated_at) VALUES (?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE value = VALUES(value), version = version + 1, updated_by = VALUES(updated_by), updated_at = VALUES(updated_at)`,
		r.Name, string(r.Value), c.UserID, now); err != nil {
		return ConfigItem{}, fmt.Errorf("set config: %w", err)
	}
	var it dynconf.Item
	var v string
	var at time.Time
	if err := s.db.QueryRowContext(ctx, "SELECT name, value, version, updated_by, updated_at FROM config_items WHERE name = ?", r.Name).
		Scan(&it.Name, &v, &it.Version, &it.UpdatedBy, &at); err != nil {
		return ConfigItem{}, fmt.Errorf("read config: %w", err)
	}
	it.Value, it.UpdatedAt = json.RawMessage(v), at.UnixMilli()
	s.announce(ctx, dynconf.Change{Item: &it})
	risk.Record(ctx, s.audit, s.log, risk.Entry(c, "admin.config.set", "config:"+r.Name, before, it.Value))
	return ConfigItem{Key: k, Value: it.Value, UpdatedBy: it.UpdatedBy, UpdatedAt: it.UpdatedAt}, nil
}

// FeaturesListResp answers admin.features.list.
type FeaturesListResp struct {
	Flags []dynconf.Flag `json:"flags"`
}

func (s *Service) featuresList(ctx context.Context, _ endpoint.Caller, _ Empty) (FeaturesListResp, error) {
	snap, err := dynconf.ReadDB(ctx, s.db, false)
	if err != nil {
		return FeaturesListResp{}, err
	}
	slices.SortFunc(snap.Flags, func(a, b dynconf.Flag) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	if snap.Flags == nil {
		snap.Flags = []dynconf.Flag{}
	}
	return FeaturesListResp{Flags: snap.Flags}, nil
}

var flagName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// FeatureReq is admin.features.get.
type FeatureReq struct {
	Name string `json:"name"`
}

func (r *FeatureReq) Validate() error {
	if !flagName.MatchString(r.Name) {
		return errors.New("name: 1-64 of a-z, 0-9, '_', '.', '-'")
	}
	return nil
}

func (s *Service) readFlag(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (dynconf.Flag, error) {
	var f dynconf.Flag
	var ov string
	var at time.Time
	err := q.QueryRowContext(ctx, "SELECT name, description, enabled, percent, overrides, version, updated_by, updated_at FROM feature_flags WHERE name = ?", name).
		Scan(&f.Name, &f.Description, &f.Enabled, &f.Percent, &ov, &f.Version, &f.UpdatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return f, imerr.New(imerr.NotFound, "no feature flag %q", name)
	}
	if err != nil {
		return f, fmt.Errorf("read flag: %w", err)
	}
	f.UpdatedAt = at.UnixMilli()
	f.Overrides, err = dynconf.DecodeOverrides(ov)
	return f, err
}

func (s *Service) featuresGet(ctx context.Context, _ endpoint.Caller, r FeatureReq) (dynconf.Flag, error) {
	return s.readFlag(ctx, s.db, r.Name)
}

// FeatureSetReq is admin.features.set: it creates the flag or changes the
// fields given. SetUsers turns the flag on or off for those users whatever the
// rest says; ClearUsers removes their overrides.
type FeatureSetReq struct {
	Name        string          `json:"name"`
	Description *string         `json:"description,omitempty"`
	Enabled     *bool           `json:"enabled,omitempty"`
	Percent     *int            `json:"percent,omitempty"`
	SetUsers    map[string]bool `json:"set_users,omitempty"`
	ClearUsers  []int64         `json:"clear_users,omitempty"`
	users       map[int64]bool
}

func (r *FeatureSetReq) Validate() error {
	if err := (&FeatureReq{Name: r.Name}).Validate(); err != nil {
		return err
	}
	if r.Description != nil {
		if err := validate.Text("description", *r.Description, 255); err != nil {
			return err
		}
	}
	if r.Percent != nil && (*r.Percent < 0 || *r.Percent > 100) {
		return errors.New("percent: 0 to 100")
	}
	if len(r.SetUsers)+len(r.ClearUsers) > dynconf.MaxFlagOverrides {
		return fmt.Errorf("set_users and clear_users: at most %d users", dynconf.MaxFlagOverrides)
	}
	r.users = make(map[int64]bool, len(r.SetUsers))
	for k, v := range r.SetUsers {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("set_users: %q is not a user id", k)
		}
		r.users[id] = v
	}
	for _, id := range r.ClearUsers {
		if id <= 0 {
			return errors.New("clear_users: invalid user id")
		}
	}
	return nil
}

func (s *Service) featuresSet(ctx context.Context, c endpoint.Caller, r FeatureSetReq) (dynconf.Flag, error) {
	var before, after dynconf.Flag
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var n int
		// The row's lock orders concurrent changes of one flag (read-modify-write
		// of its overrides).
		var locked string
		if err := tx.QueryRowContext(ctx, "SELECT name FROM feature_flags WHERE name = ? FOR UPDATE", r.Name).Scan(&locked); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		cur, err := s.readFlag(ctx, tx, r.Name)
		var ie *imerr.Error
		exists := err == nil
		if err != nil && !(errors.As(err, &ie) && ie.Code == imerr.NotFound) {
			return err
		}
		if !exists {
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM feature_flags").Scan(&n); err != nil {
				return err
			}
			if n >= dynconf.MaxFlags {
				return imerr.New(imerr.Conflict, "at most %d feature flags", dynconf.MaxFlags)
			}
			cur = dynconf.Flag{Name: r.Name}
		}
		before = cur
		next := cur
		next.Overrides = make(map[int64]bool, len(cur.Overrides)+len(r.users))
		for k, v := range cur.Overrides {
			next.Overrides[k] = v
		}
		if r.Description != nil {
			next.Description = *r.Description
		}
		if r.Enabled != nil {
			next.Enabled = *r.Enabled
		}
		if r.Percent != nil {
			next.Percent = *r.Percent
		}
		for k, v := range r.users {
			next.Overrides[k] = v
		}
		for _, id := range r.ClearUsers {
			delete(next.Overrides, id)
		}
		if len(next.Overrides) > dynconf.MaxFlagOverrides {
			return imerr.New(imerr.Conflict, "a flag holds at most %d user overrides", dynconf.MaxFlagOverrides)
		}
		now := s.now().UTC().Truncate(time.Millisecond)
		if _, err := tx.ExecContext(ctx, `INSERT INTO feature_flags (name, description, enabled, percent, overrides, updated_by, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE description = VALUES(description), enabled = VALUES(enabled),
			percent = VALUES(percent), overrides = VALUES(overrides), version = version + 1, updated_by = VALUES(updated_by), updated_at = VALUES(updated_at)`,
			next.Name, next.Description, next.Enabled, next.Percent, dynconf.EncodeOverrides(next.Overrides), c.UserID, now); err != nil {
			return err
		}
		after, err = s.readFlag(ctx, tx, r.Name)
		return err
	})
	if err != nil {
		var ie *imerr.Error
		if errors.As(err, &ie) {
			return dynconf.Flag{}, err
		}
		return dynconf.Flag{}, fmt.Errorf("set flag: %w", err)
	}
	s.announce(ctx, dynconf.Change{Flag: &after})
	risk.Record(ctx, s.audit, s.log, risk.Entry(c, "admin.features.set", "feature:"+r.Name, before, after))
	return after, nil
}

// RateListReq is admin.rate.list: the per-user overrides, a page by user id.
type RateListReq struct {
	After int64 `json:"after,omitempty"`
	Limit int   `json:"limit,omitempty"`
}

func (r *RateListReq) Validate() error {
	if r.After < 0 || r.Limit < 0 {
		return errors.New("after and limit: not negative")
	}
	return nil
}

// RateListResp answers admin.rate.list, with the global policy.
type RateListResp struct {
	Global    dynconf.RatePolicy     `json:"global"`
	Overrides []dynconf.RateOverride `json:"overrides"`
	HasMore   bool                   `json:"has_more"`
}

func (s *Service) rateList(ctx context.Context, _ endpoint.Caller, r RateListReq) (RateListResp, error) {
	limit := validate.Limit(r.Limit, 50, 200)
	out := RateListResp{Overrides: []dynconf.RateOverride{}}
	if s.live != nil {
		out.Global = s.live.Rate(0)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+dynconf.RateColumns+` FROM rate_overrides WHERE user_id > ?
		AND (direct_per_second IS NOT NULL OR direct_per_minute IS NOT NULL OR group_per_second IS NOT NULL OR group_per_minute IS NOT NULL)
		ORDER BY user_id LIMIT ?`, r.After, limit+1)
	if err != nil {
		return out, fmt.Errorf("rate list: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		o, err := dynconf.ScanRate(rows)
		if err != nil {
			return out, err
		}
		out.Overrides = append(out.Overrides, o)
	}
	if len(out.Overrides) > limit {
		out.Overrides, out.HasMore = out.Overrides[:limit], true
	}
	return out, rows.Err()
}

// RateSetReq is admin.rate.set: the user's limits (messages per second and per
// minute in 1:1 conversations and in groups; 0: no limit); a field left out or
// null takes the global value, so all null clears the override.
type RateSetReq struct {
	UserID          int64 `json:"user_id"`
	DirectPerSecond *int  `json:"direct_per_second"`
	DirectPerMinute *int  `json:"direct_per_minute"`
	GroupPerSecond  *int  `json:"group_per_second"`
	GroupPerMinute  *int  `json:"group_per_minute"`
}

func (r *RateSetReq) Validate() error {
	if r.UserID <= 0 {
		return errors.New("user_id required")
	}
	for _, v := range []*int{r.DirectPerSecond, r.DirectPerMinute, r.GroupPerSecond, r.GroupPerMinute} {
		if v != nil && (*v < 0 || *v > 1000000) {
			return errors.New("limits: 0 to 1000000")
		}
	}
	return nil
}

func (s *Service) rateSet(ctx context.Context, c endpoint.Caller, r RateSetReq) (dynconf.RateOverride, error) {
	var exists int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE id = ?", r.UserID).Scan(&exists); err != nil {
		return dynconf.RateOverride{}, fmt.Errorf("rate user: %w", err)
	}
	if exists == 0 {
		return dynconf.RateOverride{}, imerr.New(imerr.NotFound, "user not found")
	}
	var before *dynconf.RateOverride
	if o, err := dynconf.ScanRate(s.db.QueryRowContext(ctx, "SELECT "+dynconf.RateColumns+" FROM rate_overrides WHERE user_id = ?", r.UserID)); err == nil {
		before = &o
	} else {
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rate_overrides").Scan(&n); err != nil {
			return dynconf.RateOverride{}, err
		}
		if n >= dynconf.MaxRateOverrides {
			return dynconf.RateOverride{}, imerr.New(imerr.Conflict, "at most %d users have their own rate", dynconf.MaxRateOverrides)
		}
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO rate_overrides (user_id, direct_per_second, direct_per_minute, group_per_second, group_per_minute, updated_by, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE direct_per_second = VALUES(direct_per_second), direct_per_minute = VALUES(direct_per_minute),
		group_per_second = VALUES(group_per_second), group_per_minute = VALUES(group_per_minute), version = version + 1,
		updated_by = VALUES(updated_by), updated_at = VALUES(updated_at)`,
		r.UserID, r.DirectPerSecond, r.DirectPerMinute, r.GroupPerSecond, r.GroupPerMinute, c.UserID, now); err != nil {
		return dynconf.RateOverride{}, fmt.Errorf("set rate: %w", err)
	}
	o, err := dynconf.ScanRate(s.db.QueryRowContext(ctx, "SELECT "+dynconf.RateColumns+" FROM rate_overrides WHERE user_id = ?", r.UserID))
	if err != nil {
		return o, fmt.Errorf("read rate: %w", err)
	}
	s.announce(ctx, dynconf.Change{Rate: &o})
	risk.Record(ctx, s.audit, s.log, risk.Entry(c, "admin.rate.set", "user:"+strconv.FormatInt(r.UserID, 10), before, o))
	return o, nil
}

// snapshot gives an edge the items and flags (not the rate overrides, which
// only workers use).
func (s *Service) snapshot(ctx context.Context, _ endpoint.Caller, _ Empty) (dynconf.Snapshot, error) {
	return dynconf.ReadDB(ctx, s.db, false)
}
