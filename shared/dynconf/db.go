package dynconf

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// DBLoader reads the configuration from MySQL (a worker's Loader); rates
// includes the per-user rate overrides.
func DBLoader(db *sql.DB, rates bool) Loader {
	return func(ctx context.Context) (Snapshot, error) { return ReadDB(ctx, db, rates) }
}

// ReadDB reads every item, flag and (with rates) rate override.
func ReadDB(ctx context.Context, db *sql.DB, rates bool) (Snapshot, error) {
	var s Snapshot
	rows, err := db.QueryContext(ctx, "SELECT name, value, version, updated_by, updated_at FROM config_items")
	if err != nil {
		return s, fmt.Errorf("config items: %w", err)
	}
	for rows.Next() {
		var it Item
		var v string
		var at time.Time
		if err := rows.Scan(&it.Name, &v, &it.Version, &it.UpdatedBy, &at); err != nil {
			rows.Close()
			return s, err
		}
		it.Value, it.UpdatedAt = json.RawMessage(v), at.UnixMilli()
		s.Items = append(s.Items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, err
	}
	rows, err = db.QueryContext(ctx, "SELECT name, description, enabled, percent, overrides, version, updated_by, updated_at FROM feature_flags LIMIT ?", MaxFlags)
	if err != nil {
		return s, fmt.Errorf("feature flags: %w", err)
	}
	for rows.Next() {
		var f Flag
		var ov string
		var at time.Time
		if err := rows.Scan(&f.Name, &f.Description, &f.Enabled, &f.Percent, &ov, &f.Version, &f.UpdatedBy, &at); err != nil {
			rows.Close()
			return s, err
		}
		f.UpdatedAt = at.UnixMilli()
		if f.Overrides, err = DecodeOverrides(ov); err != nil {
			rows.Close()
			return s, fmt.Errorf("flag %s: %w", f.Name, err)
		}
		s.Flags = append(s.Flags, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, err
	}
	if !rates {
		return s, nil
	}
	rows, err = db.QueryContext(ctx, `SELECT user_id, direct_per_second, direct_per_minute, group_per_second, group_per_minute,
		version, updated_by, updated_at FROM rate_overrides LIMIT ?`, MaxRateOverrides)
	if err != nil {
		return s, fmt.Errorf("rate overrides: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := ScanRate(rows)
		if err != nil {
			return s, err
		}
		s.Rates = append(s.Rates, r)
	}
	return s, rows.Err()
}

// RateColumns are the columns ScanRate reads, in order.
const RateColumns = "user_id, direct_per_second, direct_per_minute, group_per_second, group_per_minute, version, updated_by, updated_at"

// ScanRate scans one rate_overrides row of RateColumns.
func ScanRate(rows interface{ Scan(...any) error }) (RateOverride, error) {
	var r RateOverride
	var ds, dm, gs, gm sql.NullInt64
	var at time.Time
	if err := rows.Scan(&r.UserID, &ds, &dm, &gs, &gm, &r.Version, &r.UpdatedBy, &at); err != nil {
		return r, err
	}
	opt := func(n sql.NullInt64) *int {
		if !n.Valid {
			return nil
		}
		v := int(n.Int64)
		return &v
	}
	r.DirectPerSecond, r.DirectPerMinute, r.GroupPerSecond, r.GroupPerMinute = opt(ds), opt(dm), opt(gs), opt(gm)
	r.UpdatedAt = at.UnixMilli()
	return r, nil
}

// DecodeOverrides reads a flag's stored overrides ({"<user id>": bool}).
func DecodeOverrides(s string) (map[int64]bool, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]bool
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(m))
	for k, v := range m {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, nil
}

// EncodeOverrides is DecodeOverrides' inverse.
func EncodeOverrides(m map[int64]bool) string {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[strconv.FormatInt(k, 10)] = v
	}
	b, _ := json.Marshal(out)
	return string(b)
}
