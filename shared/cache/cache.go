// Package cache opens the Redis client. Redis holds only state that can be rebuilt
// from MySQL (presence, caches, rate-limit counters).
package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"natter/shared/config"
)

// Open returns a client for c and pings it.
func Open(ctx context.Context, c config.Redis) (*redis.Client, error) {
	rdb := redis.NewClient(&redis.Options{
		Addr:     c.Addr,
		Password: c.Password,
		DB:       c.DB,
		PoolSize: max(c.PoolSize, 1),
	})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis ping %s: %w", c.Addr, err)
	}
	return rdb, nil
}
