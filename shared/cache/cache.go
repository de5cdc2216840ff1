// Package cache opens the Redis client. Redis holds only state that can be rebuilt
// from MySQL (presence, caches, rate-limit counters).
package cache

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"

	"natter/shared/tracing"

	"github.com/redis/go-redis/v9"

	"natter/shared/config"
)

// Open returns a client for c and pings it: a single server, a Sentinel-watched
// primary (c.MasterName, with the sentinels' addresses) or a Redis Cluster (several
// addresses, or one with c.Cluster). Keys that a script or transaction touches
// together share a hash tag ({...}), so every layout serves the same code.
func Open(ctx context.Context, c config.Redis) (redis.UniversalClient, error) {
	var addrs []string
	for a := range strings.SplitSeq(c.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         addrs,
		MasterName:    c.MasterName,
		IsClusterMode: c.Cluster,
		Password:      c.Password,
		DB:            c.DB,
		PoolSize:      max(c.PoolSize, 1),
	})
	if tracing.On() { // a span per command, under the request's span
		if err := redisotel.InstrumentTracing(rdb); err != nil {
			_ = rdb.Close()
			return nil, fmt.Errorf("redis tracing: %w", err)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis ping %s: %w", c.Addr, err)
	}
	return rdb, nil
}
