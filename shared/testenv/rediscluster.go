package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"natter/shared/cache"
	"natter/shared/config"
)

// startRedisCluster starts n redis-server processes in cluster mode, splits the
// 16,384 slots between them, joins them and waits until every node reports the
// cluster ok; e.Redis then lists the nodes and e.RDB is a cluster client.
func (e *Env) startRedisCluster(ctx context.Context, n int) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server not on PATH: run the tests with `go tool task test`, which installs it")
	}
	// A node also listens on its port + 10000 (the cluster bus): pick ports whose
	// bus port is free too.
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	var addrs []string
	for i := range n {
		port := ports[i]
		if l, lerr := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); lerr != nil {
			port = ports[n+i]
		} else {
			_ = l.Close()
		}
		dir := filepath.Join(e.dir, "redis-"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start redis-server: %w", err)
		}
		e.redisCmds = append(e.redisCmds, cmd)
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	nodes := make([]*redis.Client, n)
	for i, a := range addrs {
		nodes[i] = redis.NewClient(&redis.Options{Addr: a})
		defer nodes[i].Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range nodes {
		for c.Ping(ctx).Err() != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("redis cluster node %s did not start", c.Options().Addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	const slots = 16384
	for i, c := range nodes {
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if err := c.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			return fmt.Errorf("cluster addslotsrange: %w", err)
		}
		if i > 0 {
			host, port, _ := strings.Cut(addrs[0], ":")
			if err := c.ClusterMeet(ctx, host, port).Err(); err != nil {
				return fmt.Errorf("cluster meet: %w", err)
			}
		}
	}
	for _, c := range nodes {
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("redis cluster not ok within 20s: %s", info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	e.Redis = config.Redis{Addr: strings.Join(addrs, ","), PoolSize: 32}
	rdb, err := cache.Open(ctx, e.Redis)
	if err != nil {
		return err
	}
	e.RDB = rdb
	// Every node saying ok is not every node knowing every other's slots yet:
	// wait until keys of many slots can be written and deleted through the client.
	for i := 0; i < 64; {
		key := "testenv:ready:" + strconv.Itoa(i)
		if err := rdb.Set(ctx, key, 1, time.Minute).Err(); err != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("redis cluster not writable: %w", err)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		rdb.Del(ctx, key)
		i++
	}
	return nil
}

// ForEachRedis runs body twice, as subtests: on an Env with one redis-server and
// on one with a 3-master Redis Cluster, for the code whose Redis keys must share
// hash tags (scripts and transactions over several keys).
func ForEachRedis(t *testing.T, body func(t *testing.T, e *Env)) {
	t.Run("redis", func(t *testing.T) { body(t, Start(t)) })
	t.Run("redis-cluster", func(t *testing.T) { body(t, StartWith(t, Options{RedisCluster: true})) })
}
