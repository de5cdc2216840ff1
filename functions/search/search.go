// Package search is server-side search: the im-search micro service (msg.search,
// user.search, group.search, file.search, fav.search) and, in the worker that
// hosts it, the indexer that keeps the message index in step with the message
// events (a durable JetStream consumer, never the send path).
//
// Messages are found through an Index (index.go): by default tokens computed
// in Go (tokens.go: CJK unigrams and bigrams, words and their prefixes, case-
// and accent-folded) stored as 64-bit hashes in MariaDB/MySQL. Every candidate
// is checked against its stored text, which also gives the highlighted
// snippet. Permissions come from conversation_members, as for history: a
// member who left has no row, and min_seq hides what a group showed nobody
// who joined later.
package search

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"natter/shared/config"
	"natter/shared/endpoint"
	"natter/shared/metrics"
)

// Config is search's settings (env prefix SEARCH_ in the worker).
type Config struct {
	// IndexerOff keeps the indexer from running in this worker (the domain's
	// endpoints still serve); another worker, or none, runs it.
	IndexerOff bool `env:"INDEXER_OFF"`
	// Batch is how many message events the indexer handles at once at most,
	// Linger how long a batch waits for more after its first; Writers is how
	// many batches one worker indexes at a time.
	Batch   int           `env:"BATCH" envDefault:"256"`
	Linger  time.Duration `env:"LINGER" envDefault:"100ms"`
	Writers int           `env:"WRITERS" envDefault:"2"`
	// AckWait is how long JetStream waits for a batch's acknowledgements
	// before it delivers the events again; Backoff is the wait before a
	// failed batch comes again.
	AckWait time.Duration `env:"ACK_WAIT" envDefault:"30s"`
	Backoff time.Duration `env:"BACKOFF" envDefault:"1s"`
	// MaxScan bounds the candidates one msg.search checks against their text.
	MaxScan int `env:"MAX_SCAN" envDefault:"1000"`
}

// Deps are what the domain needs; main wires them.
type Deps struct {
	DB      *sql.DB
	NC      *nats.Conn // nil: no indexer (endpoints only)
	Index   Index      // nil: the embedded postings index on DB
	Log     zerolog.Logger
	Metrics prometheus.Registerer // may be nil
	Config  Config
}

// Service serves the search endpoints and runs the indexer.
type Service struct {
	db    *sql.DB
	nc    *nats.Conn
	index Index
	log   zerolog.Logger
	cfg   Config
	m     *searchMetrics
}

type searchMetrics struct {
	indexed, failed prometheus.Counter
	lag             prometheus.Histogram
}

// New returns the search service; Start runs its indexer.
func New(d Deps) (*Service, error) {
	s := &Service{db: d.DB, nc: d.NC, index: d.Index, log: d.Log, cfg: config.WithDefaults(d.Config)}
	if s.index == nil {
		s.index = NewPostings(d.DB)
	}
	m := &searchMetrics{
		indexed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "natter", Subsystem: "search", Name: "indexed_total",
			Help: "Messages the indexer synced (sent, edited or recalled)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "natter", Subsystem: "search", Name: "failed_total",
			Help: "Message events whose batch failed and will come again."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "natter", Subsystem: "search", Name: "index_lag_seconds",
			Help:    "From a message's send to its being searchable (its batch committed).",
			Buckets: []float64{.01, .025, .05, .075, .1, .15, .2, .3, .5, .75, 1, 1.5, 2.5, 5, 10, 30}}),
	}
	var err error
	if m.indexed, err = metrics.Register(d.Metrics, m.indexed); err != nil {
		return nil, err
	}
	if m.failed, err = metrics.Register(d.Metrics, m.failed); err != nil {
		return nil, err
	}
	if m.lag, err = metrics.Register(d.Metrics, m.lag); err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("msg.search", s.msgSearch),
		endpoint.Handle("user.search", s.userSearch),
		endpoint.Handle("group.search", s.groupSearch),
		endpoint.Handle("file.search", s.fileSearch),
		endpoint.Handle("fav.search", s.favSearch),
	}
}

// Start runs the indexer until ctx ends or the NATS connection closes, unless
// Config.IndexerOff or without NATS.
func (s *Service) Start(ctx context.Context) error {
	if s.nc == nil || s.cfg.IndexerOff {
		return nil
	}
	ctx, cancel := watchClose(ctx, s.nc)
	if err := s.consume(ctx); err != nil {
		cancel()
		return err
	}
	return nil
}

// Rebuild reindexes every message from the messages table, after forgetting
// the whole index when fresh is set, and returns how many messages it read.
// The table, not the stream, is the source: IM_MESSAGES keeps a week and at
// most 1 GiB, and events can be lost before they reach it (msgevent); the
// table is the truth. A running indexer may go on meanwhile: both read the
// truth under the document's lock.
func (s *Service) Rebuild(ctx context.Context, fresh bool, progress func(n int)) (int, error) {
	if fresh {
		if err := s.index.Clear(ctx); err != nil {
			return 0, err
		}
	}
	var (
		n       int
		lastC   string
		lastSeq int64
	)
	const page = 2000
	for {
		rows, err := s.db.QueryContext(ctx, `SELECT conv_id, seq FROM messages WHERE conv_id > ? OR (conv_id = ? AND seq > ?)
			ORDER BY conv_id, seq LIMIT ?`, lastC, lastC, lastSeq, page)
		if err != nil {
			return n, fmt.Errorf("reindex: %w", err)
		}
		keys := make([]Key, 0, page)
		for rows.Next() {
			var k Key
			if err := rows.Scan(&k.ConvID, &k.Seq); err != nil {
				rows.Close()
				return n, fmt.Errorf("reindex: %w", err)
			}
			keys = append(keys, k)
		}
		if err := rows.Close(); err != nil {
			return n, fmt.Errorf("reindex: %w", err)
		}
		if len(keys) == 0 {
			return n, nil
		}
		if err := s.index.Sync(ctx, keys); err != nil {
			return n, err
		}
		n += len(keys)
		lastC, lastSeq = keys[len(keys)-1].ConvID, keys[len(keys)-1].Seq
		if progress != nil {
			progress(n)
		}
	}
}
