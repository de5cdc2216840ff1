// Package risk is the risk-control domain (service im-risk): the sensitive-word
// list operators keep (applied by the message, account and group domains through
// functions/sensitive), users' reports, and the review queue of flagged and
// reported content, where an operator approves an item or deletes the message
// (recalled for everyone with a system notice) and may ban its sender.
package risk

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"natter/functions/sensitive"
	"natter/shared/endpoint"
	"natter/shared/logging"
)

// Remover recalls a message for everyone and leaves a system notice (the
// message domain's Service.Remove).
type Remover interface {
	Remove(ctx context.Context, conv string, seq int64, reason, key string) (bool, error)
}

// Banner bans a user (the admin domain's users management implements it). Nil:
// review deletions with ban answer unavailable.
type Banner interface {
	Ban(ctx context.Context, operator, user int64, reason string, until time.Time) error
}

// Deps are what the domain needs.
type Deps struct {
	DB      *sql.DB
	NC      *nats.Conn // word-list events
	Words   *sensitive.List
	Remover Remover
	Banner  Banner
	Auditor Auditor
	Log     zerolog.Logger
}

// Service serves the risk endpoints.
type Service struct {
	db      *sql.DB
	nc      *nats.Conn
	words   *sensitive.List
	remover Remover
	banner  Banner
	audit   Auditor
	log     zerolog.Logger
	now     func() time.Time
}

// New returns the risk service.
func New(d Deps) *Service {
	return &Service{db: d.DB, nc: d.NC, words: d.Words, remover: d.Remover, banner: d.Banner, audit: d.Auditor, log: d.Log, now: time.Now}
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("report.submit", s.report),
		endpoint.Handle("admin.words.list", s.wordsList),
		endpoint.Handle("admin.words.add", s.wordsAdd),
		endpoint.Handle("admin.words.remove", s.wordsRemove),
		endpoint.Handle("admin.review.list", s.reviewList),
		endpoint.Handle("admin.review.approve", s.reviewApprove),
		endpoint.Handle("admin.review.delete", s.reviewDelete),
	}
}

// wordsChanged tells every worker to reload the list.
func (s *Service) wordsChanged(ctx context.Context) {
	if s.nc == nil {
		return
	}
	b, _ := json.Marshal(sensitive.WordsChanged{At: s.now().UnixMilli()})
	if err := s.nc.Publish(sensitive.EvtWordsChanged, b); err != nil {
		logging.From(ctx).Warn().Err(err).Msg("publish words changed")
	}
}
