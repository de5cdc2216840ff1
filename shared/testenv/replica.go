package testenv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"natter/shared/config"
	"natter/shared/db"
	"natter/shared/ids"
)

// ErrNoMariaDB says the machine has no MariaDB server binaries to start a private
// primary and replica with.
var ErrNoMariaDB = errors.New("mariadbd and mariadb-install-db not found")

// startReplicated starts two private MariaDB servers, a primary with a binary log
// and a replica following it by GTID, creates and migrates the test database on
// the primary (the replica receives it) and points e at the primary; e.Replica is
// the replica's config.
func (e *Env) startReplicated(ctx context.Context) error {
	bin, err1 := lookPath("mariadbd")
	installdb, err2 := lookPath("mariadb-install-db")
	if err1 != nil || err2 != nil {
		return ErrNoMariaDB
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	var dsns [2]string
	for i, port := range ports {
		dir := filepath.Join(e.dir, "mysql-"+strconv.Itoa(i))
		if out, err := exec.CommandContext(ctx, installdb, "--no-defaults", "--datadir="+dir,
			"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
			return fmt.Errorf("mariadb-install-db: %w: %s", err, out)
		}
		args := []string{"--no-defaults", "--datadir=" + dir, "--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1",
			"--socket=" + filepath.Join(os.TempDir(), "natter-"+strconv.Itoa(port)+".sock"), "--log-error=" + filepath.Join(dir, "error.log"),
			"--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci", "--innodb-buffer-pool-size=64M",
			"--innodb-flush-log-at-trx-commit=2", "--server-id=" + strconv.Itoa(i+1)}
		if i == 0 {
			args = append(args, "--log-bin=binlog", "--binlog-format=ROW")
		}
		if os.Geteuid() == 0 {
			args = append(args, "--user=root")
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start mariadbd: %w", err)
		}
		e.mysqlCmds = append(e.mysqlCmds, cmd)
		dsns[i] = "root@tcp(127.0.0.1:" + strconv.Itoa(port) + ")/"
	}
	conns := make([]*sql.DB, 2)
	deadline := time.Now().Add(60 * time.Second)
	for i, dsn := range dsns {
		if conns[i], err = sql.Open("mysql", dsn); err != nil {
			return err
		}
		defer conns[i].Close()
		for conns[i].PingContext(ctx) != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("private mariadbd %d did not answer within 60s", i)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, err := conns[1].ExecContext(ctx, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, "+
		"MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos", ports[0])); err != nil {
		return fmt.Errorf("change master: %w", err)
	}
	if _, err := conns[1].ExecContext(ctx, "START SLAVE"); err != nil {
		return fmt.Errorf("start slave: %w", err)
	}
	e.dbName = "natter_t_" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(ids.Token(6)))
	mc, _ := mysql.ParseDSN(dsns[0])
	mc.DBName = e.dbName
	if err := db.CreateDatabase(ctx, mc.FormatDSN()); err != nil {
		return err
	}
	e.rootDSN = dsns[0]
	e.MySQL = config.MySQL{DSN: mc.FormatDSN(), MaxOpenConns: 32, MaxIdleConns: 32}
	rc, _ := mysql.ParseDSN(dsns[1])
	rc.DBName = e.dbName
	e.Replica = config.MySQL{DSN: rc.FormatDSN(), MaxOpenConns: 16, MaxIdleConns: 16}
	if e.DB, err = db.Open(ctx, e.MySQL); err != nil {
		return err
	}
	return db.Migrate(ctx, e.DB)
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
