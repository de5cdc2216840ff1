package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Reader routes read-heavy queries (history, sync, conversation lists) to a
// replica when one is configured, without ever showing a caller less than the
// primary had when the request started: DB reads the primary's replication
// position (a GTID set: one variable, no table touched) and asks the replica to
// wait until it has applied that much, for at most Wait. A replica that is caught
// up answers at once; one that lags longer (or fails) leaves the read to the
// primary. So a client always reads its own writes, and a sync never returns a
// page that a later sync would have to fill from the past.
type Reader struct {
	primary, replica *sql.DB
	wait             time.Duration
	mariadb          bool
	onReplica        atomic.Int64
	onPrimary        atomic.Int64
}

// NewReader returns a Reader over primary and replica (nil: every read goes to
// the primary).
func NewReader(ctx context.Context, primary, replica *sql.DB, wait time.Duration) (*Reader, error) {
	r := &Reader{primary: primary, replica: replica, wait: wait}
	if replica != nil {
		var version string
		if err := primary.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
			return nil, fmt.Errorf("mysql version: %w", err)
		}
		r.mariadb = strings.Contains(strings.ToLower(version), "mariadb")
	}
	return r, nil
}

// PrimaryOnly is a Reader without a replica.
func PrimaryOnly(primary *sql.DB) *Reader { return &Reader{primary: primary} }

// DB is the pool the caller's read should use now.
func (r *Reader) DB(ctx context.Context) *sql.DB {
	if r.replica == nil || !r.caughtUp(ctx) {
		r.onPrimary.Add(1)
		return r.primary
	}
	r.onReplica.Add(1)
	return r.replica
}

// Counts returns how many reads went to the replica and to the primary.
func (r *Reader) Counts() (replica, primary int64) { return r.onReplica.Load(), r.onPrimary.Load() }

func (r *Reader) caughtUp(ctx context.Context) bool {
	posQ, waitQ := "SELECT @@GLOBAL.gtid_executed", "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)"
	if r.mariadb {
		posQ, waitQ = "SELECT @@GLOBAL.gtid_binlog_pos", "SELECT MASTER_GTID_WAIT(?, ?)"
	}
	var pos string
	if err := r.primary.QueryRowContext(ctx, posQ).Scan(&pos); err != nil {
		return false
	}
	if pos == "" { // nothing written since the primary's binary log began
		return true
	}
	var res sql.NullInt64
	if err := r.replica.QueryRowContext(ctx, waitQ, pos, r.wait.Seconds()).Scan(&res); err != nil {
		return false
	}
	return res.Valid && res.Int64 == 0
}
