package dynconf

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"natter/shared/subject"
)

// EvtChanged is published after a config item, flag or rate override changes
// (a Change); every worker and edge applies it to its Live.
const EvtChanged = subject.EventPrefix + "config.changed"

// Limits that keep snapshots and events small.
const (
	MaxFlags         = 100
	MaxFlagOverrides = 200
	MaxRateOverrides = 10000
)

// Item is a config item that an operator set.
type Item struct {
	Name      string          `json:"name"`
	Value     json.RawMessage `json:"value"` // JSON null: back to the default
	Version   int64           `json:"version"`
	UpdatedBy int64           `json:"updated_by"`
	UpdatedAt int64           `json:"updated_at"` // ms
}

// Flag is a feature flag.
type Flag struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Enabled     bool           `json:"enabled"`           // on for everyone
	Percent     int            `json:"percent,omitempty"` // else on for this share of users (0-100)
	Overrides   map[int64]bool `json:"overrides,omitempty"`
	Version     int64          `json:"version"`
	UpdatedBy   int64          `json:"updated_by"`
	UpdatedAt   int64          `json:"updated_at"`
}

// On reports whether f is on for user: an override, else Enabled, else the
// percentage rollout by a stable hash of the flag's name and the user id (so
// raising the percentage only adds users, and each flag picks its own users).
func (f *Flag) On(user int64) bool {
	if v, ok := f.Overrides[user]; ok {
		return v
	}
	if f.Enabled {
		return true
	}
	return f.Percent > 0 && Bucket(f.Name, user) < f.Percent
}

// Bucket places user in 0..99 for flag name.
func Bucket(name string, user int64) int {
	// FNV-1a (hash/fnv's) of name, ':' and the decimal id, without allocating.
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * prime
	}
	var buf [24]byte
	b := strconv.AppendInt(append(buf[:0], ':'), user, 10)
	for _, c := range b {
		h = (h ^ uint32(c)) * prime
	}
	return int(h % 100)
}

// RateOverride replaces parts of the global send rate policy for one user; nil
// fields take the global value.
type RateOverride struct {
	UserID          int64 `json:"user_id"`
	DirectPerSecond *int  `json:"direct_per_second"`
	DirectPerMinute *int  `json:"direct_per_minute"`
	GroupPerSecond  *int  `json:"group_per_second"`
	GroupPerMinute  *int  `json:"group_per_minute"`
	Version         int64 `json:"version"`
	UpdatedBy       int64 `json:"updated_by"`
	UpdatedAt       int64 `json:"updated_at"`
}

// Snapshot is the whole runtime configuration at one moment (the wire form of
// settings.snapshot; Rates is left out for edges).
type Snapshot struct {
	Items []Item         `json:"items"`
	Flags []Flag         `json:"flags"`
	Rates []RateOverride `json:"rates,omitempty"`
}

// Change is the event EvtChanged: exactly one of its fields is set.
type Change struct {
	Item *Item         `json:"item,omitempty"`
	Flag *Flag         `json:"flag,omitempty"`
	Rate *RateOverride `json:"rate,omitempty"`
	// At is when the change committed (ms), to measure propagation.
	At int64 `json:"at"`
}

// state is one immutable version of the configuration; Live swaps it whole.
type state struct {
	items map[string]Item
	typed map[string]any // parsed values of items (absent: default)
	flags map[string]*Flag
	rates map[int64]*RateOverride
}

func emptyState() *state {
	return &state{items: map[string]Item{}, typed: map[string]any{}, flags: map[string]*Flag{}, rates: map[int64]*RateOverride{}}
}

func (s *state) clone() *state {
	n := &state{items: make(map[string]Item, len(s.items)), typed: make(map[string]any, len(s.typed)),
		flags: make(map[string]*Flag, len(s.flags)), rates: make(map[int64]*RateOverride, len(s.rates))}
	for k, v := range s.items {
		n.items[k] = v
	}
	for k, v := range s.typed {
		n.typed[k] = v
	}
	for k, v := range s.flags {
		n.flags[k] = v
	}
	for k, v := range s.rates {
		n.rates[k] = v
	}
	return n
}

// put applies one entry if it is newer than what s holds; it reports whether it did.
func (s *state) put(ch Change) bool {
	switch {
	case ch.Item != nil:
		it := *ch.Item
		if cur, ok := s.items[it.Name]; ok && cur.Version >= it.Version {
			return false
		}
		s.items[it.Name] = it
		delete(s.typed, it.Name)
		if k, ok := KeyOf(it.Name); ok && len(it.Value) > 0 && string(it.Value) != "null" {
			if v, err := k.Parse(it.Value); err == nil {
				s.typed[it.Name] = v
			}
		}
	case ch.Flag != nil:
		if cur, ok := s.flags[ch.Flag.Name]; ok && cur.Version >= ch.Flag.Version {
			return false
		}
		f := *ch.Flag
		s.flags[f.Name] = &f
	case ch.Rate != nil:
		if cur, ok := s.rates[ch.Rate.UserID]; ok && cur.Version >= ch.Rate.Version {
			return false
		}
		r := *ch.Rate
		s.rates[r.UserID] = &r
	default:
		return false
	}
	return true
}

// Live is a process's view of the runtime configuration. The zero value is not
// usable; New makes one holding only defaults.
type Live struct {
	cur     atomic.Pointer[state]
	mu      sync.Mutex // serializes writers (copy on write)
	applied atomic.Int64
	// OnChange, when set before Watch, is called after each change an event
	// brought, with the time since it committed (a propagation figure).
	OnChange func(ch Change, lag time.Duration)
}

// New returns a Live with every item at its default and no flags.
func New() *Live {
	l := &Live{}
	l.cur.Store(emptyState())
	return l
}

// Apply applies a change if it is newer than what l holds.
func (l *Live) Apply(ch Change) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.cur.Load().clone()
	if !n.put(ch) {
		return false
	}
	l.cur.Store(n)
	l.applied.Add(1)
	return true
}

// Load replaces l's content by snap, except entries l holds in a newer version
// (an event that overtook the load).
func (l *Live) Load(snap Snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.cur.Load()
	n := emptyState()
	for i := range snap.Items {
		n.put(Change{Item: &snap.Items[i]})
	}
	for i := range snap.Flags {
		n.put(Change{Flag: &snap.Flags[i]})
	}
	for i := range snap.Rates {
		n.put(Change{Rate: &snap.Rates[i]})
	}
	for _, it := range old.items {
		n.put(Change{Item: &it})
	}
	for _, f := range old.flags {
		n.put(Change{Flag: f})
	}
	for _, r := range old.rates {
		n.put(Change{Rate: r})
	}
	l.cur.Store(n)
}

// Snapshot returns what l holds (rates included).
func (l *Live) Snapshot() Snapshot {
	s := l.cur.Load()
	var out Snapshot
	for _, it := range s.items {
		out.Items = append(out.Items, it)
	}
	for _, f := range s.flags {
		out.Flags = append(out.Flags, *f)
	}
	for _, r := range s.rates {
		out.Rates = append(out.Rates, *r)
	}
	return out
}

// Applied counts the changes applied from events so far.
func (l *Live) Applied() int64 { return l.applied.Load() }

// Duration returns the duration item name, or def when unset.
func (l *Live) Duration(name string, def time.Duration) time.Duration {
	if v, ok := l.cur.Load().typed[name].(time.Duration); ok {
		return v
	}
	return def
}

// defaults are the keys' own defaults, parsed once (hot paths read them).
var defaults = func() map[string]any {
	m := map[string]any{}
	for _, k := range Keys {
		if k.Default == "" {
			continue
		}
		v, err := k.Parse(json.RawMessage(k.Default))
		if err != nil {
			panic("dynconf: default of " + k.Name + ": " + err.Error())
		}
		m[k.Name] = v
	}
	return m
}()

// Int returns the integer item name, or its key's default, or def.
func (l *Live) Int(name string, def int64) int64 {
	if v, ok := l.cur.Load().typed[name].(int64); ok {
		return v
	}
	if v, ok := defaults[name].(int64); ok {
		return v
	}
	return def
}

// Bool returns the boolean item name, or its key's default, or def.
func (l *Live) Bool(name string, def bool) bool {
	if v, ok := l.cur.Load().typed[name].(bool); ok {
		return v
	}
	if v, ok := defaults[name].(bool); ok {
		return v
	}
	return def
}

// Item returns the item an operator set, if any.
func (l *Live) Item(name string) (Item, bool) {
	it, ok := l.cur.Load().items[name]
	return it, ok
}

// Flag returns the flag name, if it exists.
func (l *Live) Flag(name string) (Flag, bool) {
	f, ok := l.cur.Load().flags[name]
	if !ok {
		return Flag{}, false
	}
	return *f, true
}

// Enabled reports whether flag name is on for user; def when there is no such
// flag.
func (l *Live) Enabled(name string, user int64, def bool) bool {
	f, ok := l.cur.Load().flags[name]
	if !ok {
		return def
	}
	return f.On(user)
}

// RatePolicy is one user's send limits; 0 means no limit.
type RatePolicy struct {
	DirectPerSecond, DirectPerMinute, GroupPerSecond, GroupPerMinute int
}

// Rate returns user's send rate policy: the global items with the user's
// override on top. It allocates nothing (once per send).
func (l *Live) Rate(user int64) RatePolicy {
	p := RatePolicy{
		DirectPerSecond: int(l.Int(RateDirectSecond, 0)), DirectPerMinute: int(l.Int(RateDirectMinute, 0)),
		GroupPerSecond: int(l.Int(RateGroupSecond, 0)), GroupPerMinute: int(l.Int(RateGroupMinute, 0)),
	}
	if o, ok := l.cur.Load().rates[user]; ok {
		if o.DirectPerSecond != nil {
			p.DirectPerSecond = *o.DirectPerSecond
		}
		if o.DirectPerMinute != nil {
			p.DirectPerMinute = *o.DirectPerMinute
		}
		if o.GroupPerSecond != nil {
			p.GroupPerSecond = *o.GroupPerSecond
		}
		if o.GroupPerMinute != nil {
			p.GroupPerMinute = *o.GroupPerMinute
		}
	}
	return p
}

// Loader reads the whole configuration from its source of truth (the database
// in a worker, the settings.snapshot op in an edge).
type Loader func(ctx context.Context) (Snapshot, error)

// Watch keeps l current until ctx ends: it subscribes to EvtChanged, then loads
// the whole configuration, and loads it again every refresh (a minute when 0) to
// heal a missed event. It returns once the first load succeeded, or its error.
func (l *Live) Watch(ctx context.Context, nc *nats.Conn, load Loader, refresh time.Duration, log zerolog.Logger) error {
	if err := l.subscribe(ctx, nc, log); err != nil {
		return err
	}
	snap, err := load(ctx)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	l.Load(snap)
	go l.reload(ctx, load, refresh, true, log)
	return nil
}

// Follow is Watch for a process that must start without the source (an edge
// before any worker answers settings.snapshot): it subscribes and returns; the
// first load is retried every 2 s until it succeeds. Meanwhile l holds the
// changes events bring, and defaults for the rest.
func (l *Live) Follow(ctx context.Context, nc *nats.Conn, load Loader, refresh time.Duration, log zerolog.Logger) error {
	if err := l.subscribe(ctx, nc, log); err != nil {
		return err
	}
	go l.reload(ctx, load, refresh, false, log)
	return nil
}

func (l *Live) subscribe(ctx context.Context, nc *nats.Conn, log zerolog.Logger) error {
	sub, err := nc.Subscribe(EvtChanged, func(m *nats.Msg) {
		var ch Change
		if err := json.Unmarshal(m.Data, &ch); err != nil {
			log.Warn().Err(err).Msg("dynconf: bad config.changed event")
			return
		}
		if l.Apply(ch) && l.OnChange != nil {
			l.OnChange(ch, time.Since(time.UnixMilli(ch.At)))
		}
	})
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	return nil
}

// reload loads every refresh (every 2 s until a first success unless loaded).
func (l *Live) reload(ctx context.Context, load Loader, refresh time.Duration, loaded bool, log zerolog.Logger) {
	if refresh <= 0 {
		refresh = time.Minute
	}
	wait := refresh
	if !loaded {
		wait = 0
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		snap, err := load(lctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && loaded {
				log.Warn().Err(err).Msg("dynconf: reload")
			}
			if !loaded {
				wait = 2 * time.Second
			}
			continue
		}
		l.Load(snap)
		loaded, wait = true, refresh
	}
}
