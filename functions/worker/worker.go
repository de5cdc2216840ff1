// Package worker assembles the domains a worker process hosts. The worker binary
// (functions/main.go) and end-to-end tests both build their endpoints here, so a
// test runs exactly what production runs.
package worker

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"natter/functions/account"
	"natter/functions/conv"
	"natter/functions/friend"
	"natter/functions/group"
	"natter/functions/message"
	"natter/shared/auth"
	"natter/shared/endpoint"
	"natter/shared/ids"
)

// Deps is everything any domain needs; each domain takes its part.
type Deps struct {
	DB *sql.DB
	// ScriptDB is the same database opened with db.OpenScripts, for the message
	// store's group-commit writers (required when Message.Writers > 0).
	ScriptDB *sql.DB
	Redis    *redis.Client
	NC       *nats.Conn
	Signer   *auth.Signer
	IDs      *ids.Generator
	Log      zerolog.Logger
	Metrics  prometheus.Registerer // may be nil
	Account  account.Config
	Message  message.Config
	Group    group.Config
	Friend   friend.Config

	// Built by Endpoints when nil; shared by the domains that write messages.
	Store     *message.Store
	Fanout    *message.Fanout
	Relations *friend.Relations
}

var domains = map[string]func(Deps) []endpoint.Endpoint{
	"friend": func(d Deps) []endpoint.Endpoint {
		return friend.New(friend.Deps{DB: d.DB, NC: d.NC, Config: d.Friend, Relations: d.Relations}).Endpoints()
	},
	"account": func(d Deps) []endpoint.Endpoint {
		return account.New(account.Deps{DB: d.DB, Redis: d.Redis, NC: d.NC, Signer: d.Signer, Config: d.Account}).Endpoints()
	},
	"message": func(d Deps) []endpoint.Endpoint {
		return message.New(message.Deps{DB: d.DB, Redis: d.Redis, Store: d.Store, Fanout: d.Fanout, Friends: d.Relations, Config: d.Message}).Endpoints()
	},
	"conv": func(d Deps) []endpoint.Endpoint {
		return conv.New(conv.Deps{DB: d.DB, Fanout: d.Fanout}).Endpoints()
	},
	"group": func(d Deps) []endpoint.Endpoint {
		return group.New(group.Deps{DB: d.DB, Store: d.Store, Fanout: d.Fanout, Config: d.Group}).Endpoints()
	},
}

// Domains lists every domain name, sorted.
func Domains() []string {
	names := make([]string, 0, len(domains))
	for n := range domains {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Endpoints returns the endpoints of the named domains (all when names is empty).
// Background work they start (group fan-out) lives until ctx ends.
func Endpoints(ctx context.Context, names []string, d Deps) ([]endpoint.Endpoint, error) {
	if len(names) == 0 {
		names = Domains()
	}
	if d.Relations == nil {
		d.Relations = friend.NewRelations(d.DB)
		if d.NC != nil {
			if err := d.Relations.Watch(ctx, d.NC); err != nil {
				return nil, err
			}
		}
	}
	if d.Store == nil {
		d.Store = message.NewStore(d.DB, d.IDs)
		if d.Message.Writers > 0 {
			if d.ScriptDB == nil {
				return nil, fmt.Errorf("message writers need Deps.ScriptDB")
			}
			d.Store.Start(ctx, message.BatchConfig{Writers: d.Message.Writers, Linger: d.Message.BatchLinger,
				Metrics: d.Metrics, Scripts: d.ScriptDB})
		}
	}
	if d.Fanout == nil {
		d.Fanout = message.NewFanout(ctx, d.DB, d.NC, d.Log, d.Message.FanoutWorkers)
	}
	var eps []endpoint.Endpoint
	for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
		build, ok := domains[n]
		if !ok {
			return nil, fmt.Errorf("unknown function domain %q (have %v)", n, Domains())
		}
		eps = append(eps, build(d)...)
	}
	return eps, nil
}
