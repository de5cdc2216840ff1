// Package worker assembles the domains a worker process hosts. The worker binary
// (functions/main.go) and end-to-end tests both build their endpoints here, so a
// test runs exactly what production runs.
package worker

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"natter/shared/db"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"natter/functions/account"
	"natter/functions/admin"
	"natter/functions/conv"
	"natter/functions/deliver"
	"natter/functions/fav"
	"natter/functions/file"
	"natter/functions/friend"
	"natter/functions/group"
	"natter/functions/message"
	"natter/functions/msgevent"
	"natter/functions/msgstore"
	"natter/functions/presence"
	"natter/functions/push"
	"natter/functions/risk"
	"natter/functions/search"
	"natter/functions/sensitive"
	"natter/functions/settings"
	"natter/shared/auth"
	"natter/shared/config"
	"natter/shared/dynconf"
	"natter/shared/endpoint"
	"natter/shared/ids"
	"natter/shared/op"
)

// Deps is everything any domain needs; each domain takes its part.
type Deps struct {
	DB *sql.DB
	// ScriptDB is the same database opened with db.OpenScripts, for the message
	// store's group-commit writers (required unless Message.Writers < 0).
	ScriptDB *sql.DB
	// Reads routes history, sync and conversation lists to a caught-up replica;
	// nil: they read DB.
	Reads  *db.Reader
	Redis  redis.UniversalClient
	NC     *nats.Conn
	Signer *auth.Signer
	// AdminSigner issues operator tokens (auth.NewOperatorSigner); required by
	// the admin domain.
	AdminSigner *auth.Signer
	Admin       admin.Config
	IDs         *ids.Generator
	Log         zerolog.Logger
	Metrics     prometheus.Registerer // may be nil
	Account     account.Config
	Message     message.Config
	Group       group.Config
	Friend      friend.Config
	MsgEvent    msgevent.Config
	Presence    presence.Config
	File        file.Config

	// S3 stores files; Presign signs the URLs clients use (blob.Presigner; S3
	// when nil). Without S3 the file ops answer unavailable.
	S3       *minio.Client
	Presign  *minio.Client
	S3Bucket string
	Push     push.Config
	// PushProviders replaces the push providers Push configures, by name (tests).
	PushProviders map[string]push.Provider
	Search        search.Config

	// Built by Endpoints when nil; shared by the domains.
	Store     *msgstore.Store
	Deliverer *deliver.Deliverer
	Relations *friend.Relations
	Events    *msgevent.Publisher // nil without NC: no message events
	Registry  *presence.Registry
	Notifier  *presence.Notifier // nil without NC
	Files     *file.Service      // the file domain's service: media messages and favorites use it
	// Words is the sensitive-word list (message, account, group); Live the
	// runtime configuration (config items, flags, rate overrides). Both follow
	// their change events until ctx ends.
	Words *sensitive.List
	Live  *dynconf.Live
	// Auditor records operator actions (risk, settings); nil: the back office's
	// audit log (a log line without DB).
	Auditor risk.Auditor
	// Banner bans users from the review queue; nil: the back office's ban.
	Banner risk.Banner
}

// domains builds each domain's endpoints, keyed by the domain name of its
// service in the op table (op.Services); FUNCTIONS names these.
// Background work a domain starts (push's consumers, the file worker) lives until ctx ends.
var domains = map[string]func(context.Context, Deps) ([]endpoint.Endpoint, error){
	"account": func(ctx context.Context, d Deps) ([]endpoint.Endpoint, error) {
		svc := account.New(account.Deps{DB: d.DB, Redis: d.Redis, NC: d.NC, Deliver: d.Deliverer, Signer: d.Signer, Relations: d.Relations,
			Presence: d.Registry, Notifier: d.Notifier, Files: d.Files, Words: d.Words, Live: d.Live, Config: d.Account})
		svc.Run(ctx, d.Log)
		return svc.Endpoints(), nil
	},
	"friend": func(_ context.Context, d Deps) ([]endpoint.Endpoint, error) {
		return friend.New(friend.Deps{DB: d.DB, NC: d.NC, Deliver: d.Deliverer, Config: d.Friend, Relations: d.Relations}).Endpoints(), nil
	},
	"group": func(ctx context.Context, d Deps) ([]endpoint.Endpoint, error) {
		svc := group.New(group.Deps{DB: d.DB, Store: d.Store, Deliver: d.Deliverer, Relations: d.Relations, Files: d.Files,
			Words: d.Words, Live: d.Live, Config: d.Group})
		if d.NC != nil {
			if err := svc.WatchDeletions(ctx, d.NC); err != nil {
				return nil, err
			}
		}
		return svc.Endpoints(), nil
	},
	"message": func(_ context.Context, d Deps) ([]endpoint.Endpoint, error) {
		return d.messages().Endpoints(), nil
	},
	"conv": func(_ context.Context, d Deps) ([]endpoint.Endpoint, error) {
		return conv.New(conv.Deps{DB: d.DB, Reads: d.Reads, Deliver: d.Deliverer}).Endpoints(), nil
	},
	// The file domain's worker (hashes, thumbnails) and sweeper run where the
	// domain is hosted.
	"file": func(ctx context.Context, d Deps) ([]endpoint.Endpoint, error) {
		if err := d.Files.Start(ctx); err != nil {
			return nil, err
		}
		return d.Files.Endpoints(), nil
	},
	// Risk control: its review deletions recall through the message domain's
	// code, whichever worker hosts that.
	"risk": func(_ context.Context, d Deps) ([]endpoint.Endpoint, error) {
		return risk.New(risk.Deps{DB: d.DB, NC: d.NC, Words: d.Words, Remover: d.messages(), Banner: d.banner(),
			Auditor: d.auditor(), Log: d.Log}).Endpoints(), nil
	},
	"settings": func(_ context.Context, d Deps) ([]endpoint.Endpoint, error) {
		return settings.New(settings.Deps{DB: d.DB, NC: d.NC, Live: d.Live, Auditor: d.auditor(), Log: d.Log}).Endpoints(), nil
	},
	"fav": func(_ context.Context, d Deps) ([]endpoint.Endpoint, error) {
		return fav.New(fav.Deps{DB: d.DB, Files: d.Files}).Endpoints(), nil
	},
	// The worker hosting push also runs its consumers (message events, session
	// ends).
	"push": func(ctx context.Context, d Deps) ([]endpoint.Endpoint, error) {
		s, err := push.New(push.Deps{DB: d.DB, Redis: d.Redis, NC: d.NC, Presence: d.Registry, Log: d.Log, Metrics: d.Metrics,
			Config: d.Push, Providers: d.PushProviders})
		if err != nil {
			return nil, err
		}
		if err := s.Start(ctx); err != nil {
			return nil, err
		}
		return s.Endpoints(), nil
	},
	// The back office runs the account and group domains' own code for its
	// changes to users and groups, and audits security events from IM_EVENTS.
	"admin": func(ctx context.Context, d Deps) ([]endpoint.Endpoint, error) {
		s := d.backOffice()
		if err := s.Start(ctx); err != nil {
			return nil, err
		}
		return s.Endpoints(), nil
	},
	// The worker hosting search also runs its indexer (unless SEARCH_INDEXER_OFF).
	"search": func(ctx context.Context, d Deps) ([]endpoint.Endpoint, error) {
		s, err := search.New(search.Deps{DB: d.DB, NC: d.NC, Log: d.Log, Metrics: d.Metrics, Config: d.Search})
		if err != nil {
			return nil, err
		}
		if err := s.Start(ctx); err != nil {
			return nil, err
		}
		return s.Endpoints(), nil
	},
}

// backOffice is the admin domain's service: its endpoints, the audit log risk
// and settings write to, and the bans of the review queue.
func (d Deps) backOffice() *admin.Service {
	return admin.New(admin.Deps{DB: d.DB, Redis: d.Redis, NC: d.NC, Signer: d.AdminSigner, Relations: d.Relations, Presence: d.Registry,
		Accounts: account.New(account.Deps{DB: d.DB, Redis: d.Redis, NC: d.NC, Deliver: d.Deliverer, Signer: d.Signer, Relations: d.Relations,
			Presence: d.Registry, Notifier: d.Notifier, Files: d.Files, Words: d.Words, Live: d.Live, Config: d.Account}),
		Groups: group.New(group.Deps{DB: d.DB, Store: d.Store, Deliver: d.Deliverer, Relations: d.Relations, Files: d.Files,
			Words: d.Words, Live: d.Live, Config: d.Group}),
		Log: d.Log, Config: d.Admin})
}

// banner is who bans from the review queue: the back office, unless given.
func (d Deps) banner() risk.Banner {
	if d.Banner != nil || d.DB == nil {
		return d.Banner
	}
	return d.backOffice()
}

// auditLog writes risk's and settings' audit entries to the back office's log.
type auditLog struct{ s *admin.Service }

func (a auditLog) Record(ctx context.Context, e risk.AuditEntry) error {
	return a.s.RecordOperator(ctx, e.Actor, e.Action, e.Target, e.Before, e.After, e.IP, e.At)
}

// messages is the message domain's service: its endpoints, and the removals
// the review queue makes.
func (d Deps) messages() *message.Service {
	md := message.Deps{DB: d.DB, Reads: d.Reads, Redis: d.Redis, Store: d.Store, Deliver: d.Deliverer, Friends: d.Relations, Files: d.Files,
		Words: d.Words, Live: d.Live, Review: risk.New(risk.Deps{DB: d.DB, Log: d.Log}), Config: d.Message}
	if d.Events != nil {
		md.Events = d.Events
	}
	return message.New(md)
}

// auditor is where risk and settings record operator actions: the back
// office's audit log (MySQL), unless given; the log without a database.
func (d Deps) auditor() risk.Auditor {
	if d.Auditor != nil {
		return d.Auditor
	}
	if d.DB != nil {
		return auditLog{d.backOffice()}
	}
	return risk.LogAuditor{Log: d.Log}
}

// Domains lists every domain name, in the op table's order.
func Domains() []string {
	names := make([]string, 0, len(op.Services))
	for _, s := range op.Services {
		names = append(names, s.Domain)
	}
	return names
}

// Endpoints returns the endpoints of the named domains (all when names is empty).
// Each domain must serve exactly the ops the table gives its service: a missing
// or extra handler is an error here, at start-up, rather than a 503 at run time.
// Background work they start (group commit, fan-out) lives until ctx ends.
func Endpoints(ctx context.Context, names []string, d Deps) ([]endpoint.Endpoint, error) {
	if len(names) == 0 {
		names = Domains()
	}
	if err := d.shared(ctx); err != nil {
		return nil, err
	}
	var eps []endpoint.Endpoint
	for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
		svc, ok := op.ServiceOf(n)
		build, built := domains[n]
		if !ok || !built {
			return nil, fmt.Errorf("unknown function domain %q (have %v)", n, Domains())
		}
		got, err := build(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("domain %s: %w", n, err)
		}
		if err := Check(svc, got); err != nil {
			return nil, err
		}
		eps = append(eps, got...)
	}
	return eps, nil
}

// Check reports an error unless eps serve each op of svc exactly once and
// nothing else.
func Check(svc op.Service, eps []endpoint.Endpoint) error {
	seen := map[string]int{}
	for _, ep := range eps {
		if ep.Op.Service != svc.Name {
			return fmt.Errorf("domain %s serves %s, which the op table gives to %s", svc.Domain, ep.Op.Name, ep.Op.Service)
		}
		seen[ep.Op.Name]++
	}
	for _, o := range op.ByService(svc.Name) {
		switch seen[o.Name] {
		case 1:
		case 0:
			return fmt.Errorf("domain %s has no handler for %s", svc.Domain, o.Name)
		default:
			return fmt.Errorf("domain %s has %d handlers for %s", svc.Domain, seen[o.Name], o.Name)
		}
	}
	return nil
}

// shared builds what several domains use, unless the caller gave it.
func (d *Deps) shared(ctx context.Context) error {
	if d.Relations == nil {
		d.Relations = friend.NewRelations(d.DB)
		if d.NC != nil {
			if err := d.Relations.Watch(ctx, d.NC); err != nil {
				return err
			}
		}
	}
	if d.Events == nil && d.NC != nil {
		var err error
		if d.Events, err = msgevent.New(ctx, d.NC, d.Log, d.Metrics, d.MsgEvent); err != nil {
			return err
		}
	}
	if d.Store == nil {
		var events msgstore.Events
		if d.Events != nil {
			events = d.Events
		}
		d.Store = msgstore.New(d.DB, d.IDs, events)
		if mc := config.WithDefaults(d.Message); mc.Writers > 0 {
			if err := d.Store.Start(ctx, msgstore.BatchConfig{Writers: mc.Writers, Linger: mc.BatchLinger,
				Metrics: d.Metrics, Scripts: d.ScriptDB}); err != nil {
				return err
			}
		}
	}
	if d.Files == nil {
		d.Files = file.New(file.Deps{DB: d.DB, NC: d.NC, IDs: d.IDs, Log: d.Log, S3: d.S3, Presign: d.Presign, Bucket: d.S3Bucket, Config: d.File})
	}
	if d.Deliverer == nil {
		var err error
		if d.Deliverer, err = deliver.New(ctx, deliver.Deps{NC: d.NC, Log: d.Log, Metrics: d.Metrics}); err != nil {
			return err
		}
	}
	if d.Words == nil {
		d.Words = sensitive.NewList(d.DB, d.Log)
		switch {
		case d.DB == nil: // building endpoints only (tests of the table)
		case d.NC != nil:
			if err := d.Words.Watch(ctx, d.NC, 0); err != nil {
				return err
			}
		default:
			if err := d.Words.Load(ctx); err != nil {
				return err
			}
		}
	}
	if d.Live == nil {
		d.Live = dynconf.New()
		switch {
		case d.DB == nil:
		case d.NC != nil:
			if err := d.Live.Watch(ctx, d.NC, dynconf.DBLoader(d.DB, true), 0, d.Log); err != nil {
				return err
			}
		default:
			snap, err := dynconf.ReadDB(ctx, d.DB, true)
			if err != nil {
				return err
			}
			d.Live.Load(snap)
		}
	}
	pc := config.WithDefaults(d.Presence)
	if d.Registry == nil {
		d.Registry = presence.NewRegistry(d.Redis, pc.Stale)
	}
	if d.Notifier == nil && d.NC != nil {
		var err error
		if d.Notifier, err = presence.NewNotifier(ctx, presence.NotifierDeps{Registry: d.Registry, Watchers: d.Relations,
			Deliver: d.Deliverer, DB: d.DB, Log: d.Log, Metrics: d.Metrics, Config: pc}); err != nil {
			return err
		}
	}
	return nil
}
