// Package db opens the MySQL/MariaDB pool, applies the migrations in sql/ and
// classifies driver errors.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/XSAM/otelsql"
	"go.opentelemetry.io/otel/attribute"

	"natter/shared/tracing"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"

	"natter/shared/config"
)

// Open opens a pool for c.DSN (parseTime and utf8mb4 are forced) and pings it.
// Every connection runs at READ COMMITTED: no gap locks, so inserts into
// neighbouring keys do not deadlock; every invariant natter keeps rests on row
// locks and unique keys. Setting it per session saves a round trip per transaction.
func Open(ctx context.Context, c config.MySQL) (*sql.DB, error) {
	return openConfigured(ctx, c, false)
}

// OpenScripts is Open for a pool whose queries may be scripts of several
// statements, which run in one round trip (the message store's group commit
// sends a whole transaction as one). Only code that builds its SQL from
// constants and placeholders uses it: with interpolated arguments a script is as
// safe as a single statement, but an injected ';' would be worse.
func OpenScripts(ctx context.Context, c config.MySQL) (*sql.DB, error) {
	return openConfigured(ctx, c, true)
}

func openConfigured(ctx context.Context, c config.MySQL, scripts bool) (*sql.DB, error) {
	mc, err := mysql.ParseDSN(c.DSN)
	if err != nil {
		return nil, fmt.Errorf("mysql dsn: %w", err)
	}
	mc.ParseTime = true
	// Without it every query with arguments is a server-side prepare, execute and
	// close: three round trips and three parses. Interpolation is safe with utf8mb4.
	mc.InterpolateParams = true
	mc.Loc = time.UTC
	mc.MultiStatements = scripts
	mc.Collation = "utf8mb4_unicode_ci"
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	mc.Params["time_zone"] = "'+00:00'"
	d, err := open(ctx, mc, c)
	if err != nil {
		return nil, err
	}
	// MySQL 8 and MariaDB 11.1+ call it transaction_isolation, MariaDB 10.x tx_isolation.
	name := "transaction_isolation"
	var v string
	if err := d.QueryRowContext(ctx, "SELECT @@transaction_isolation").Scan(&v); err != nil {
		name = "tx_isolation"
	}
	_ = d.Close()
	mc.Params[name] = "'READ-COMMITTED'"
	return open(ctx, mc, c)
}

func open(ctx context.Context, mc *mysql.Config, c config.MySQL) (*sql.DB, error) {
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("mysql connector: %w", err)
	}
	d := sql.OpenDB(conn)
	if tracing.On() { // a span per query, under the request's span
		d = otelsql.OpenDB(conn, otelsql.WithAttributes(attribute.String("db.system.name", "mysql")))
	}
	d.SetMaxOpenConns(max(c.MaxOpenConns, 1))
	d.SetMaxIdleConns(max(c.MaxIdleConns, 1))
	d.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.PingContext(pctx); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("mysql ping %s: %w", mc.Addr, err)
	}
	return d, nil
}

// Migrate applies every pending migration from sql/migrations.
func Migrate(ctx context.Context, d *sql.DB) error {
	p, err := goose.NewProvider(goose.DialectMySQL, d, mustSub())
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// CreateDatabase creates the database named in dsn if missing (connecting without it).
func CreateDatabase(ctx context.Context, dsn string) error {
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("mysql dsn: %w", err)
	}
	name := mc.DBName
	mc.DBName = ""
	d, err := Open(ctx, config.MySQL{DSN: mc.FormatDSN(), MaxOpenConns: 1, MaxIdleConns: 1})
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// IsDuplicate reports whether err is a unique-key violation (MySQL 1062).
func IsDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// IsRetryable reports whether err is a deadlock or lock wait timeout, after which
// the whole transaction may be retried.
func IsRetryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// InTx runs fn in a transaction, committing on nil and rolling back otherwise. It
// retries fn a few times on deadlock.
func InTx(ctx context.Context, d *sql.DB, fn func(*sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		tx, err := d.BeginTx(ctx, nil) // READ COMMITTED: set per session by Open
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		err = fn(tx)
		if err == nil {
			if err = tx.Commit(); err == nil {
				return nil
			}
			err = fmt.Errorf("commit: %w", err)
		} else {
			_ = tx.Rollback()
		}
		if !IsRetryable(err) || attempt == 3 {
			return err
		}
	}
}
