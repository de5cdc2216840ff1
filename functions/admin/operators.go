package admin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"natter/shared/auth"
	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/ids"
	"natter/shared/imerr"
	"natter/shared/password"
	"natter/shared/username"
)

var errBadLogin = imerr.New(imerr.Unauthorized, "wrong username, password or code")

type operatorRow struct {
	Operator
	hash     string
	totp     sql.NullString
	totpLast int64
}

const operatorColumns = "id, username, role, password_hash, totp_secret, totp_last, disabled, created_at, last_login_at"

func scanOperator(sc interface{ Scan(...any) error }) (operatorRow, error) {
	var o operatorRow
	var created time.Time
	var last sql.NullTime
	err := sc.Scan(&o.ID, &o.Username, &o.Role, &o.hash, &o.totp, &o.totpLast, &o.Disabled, &created, &last)
	o.CreatedAt, o.TOTP = ms(created), o.totp.Valid
	if last.Valid {
		o.LastLogin = ms(last.Time)
	}
	return o, err
}

// login answers admin.login: password (argon2id, as chat users'), then the TOTP
// code if the operator set one up. Every failure is audited; LoginFailures of
// one name within LoginWindow lock it until the window ends.
func (s *Service) login(ctx context.Context, c endpoint.Caller, r LoginReq) (LoginResp, error) {
	if s.signer == nil {
		return LoginResp{}, imerr.New(imerr.Unavailable, "operator logins are not served here (no ADMIN_AUTH_SECRET)")
	}
	name, nerr := username.Canonical(r.Username)
	fail := func(uid int64, why string) (LoginResp, error) {
		s.loginFailed(ctx, name, uid, why, c.ClientIP)
		return LoginResp{}, errBadLogin
	}
	if nerr != nil {
		_ = s.argon(ctx, func() { password.CheckNobody(r.Password) })
		return fail(0, "no such operator")
	}
	if locked, err := s.loginLocked(ctx, name); err != nil {
		return LoginResp{}, err
	} else if locked {
		return LoginResp{}, imerr.New(imerr.RateLimited, "too many failed logins: try again later")
	}
	o, err := scanOperator(s.db.QueryRowContext(ctx, "SELECT "+operatorColumns+" FROM operators WHERE username = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		_ = s.argon(ctx, func() { password.CheckNobody(r.Password) })
		return fail(0, "no such operator")
	}
	if err != nil {
		return LoginResp{}, fmt.Errorf("load operator: %w", err)
	}
	var ok bool
	if aerr := s.argon(ctx, func() { ok, err = password.Check(o.hash, r.Password) }); aerr != nil {
		return LoginResp{}, aerr
	}
	if err != nil {
		return LoginResp{}, fmt.Errorf("operator %d: %w", o.ID, err)
	}
	if !ok {
		return fail(o.ID, "wrong password")
	}
	now := s.now()
	if o.totp.Valid {
		if r.TOTP == "" {
			return LoginResp{}, imerr.New(imerr.Unauthorized, "totp code required")
		}
		step := totpCheck(o.totp.String, r.TOTP, now, o.totpLast)
		if step == 0 {
			return fail(o.ID, "wrong totp code")
		}
		// A code works once: the step is remembered, and a race loses here.
		res, err := s.db.ExecContext(ctx, "UPDATE operators SET totp_last = ? WHERE id = ? AND totp_last < ?", step, o.ID, step)
		if err != nil {
			return LoginResp{}, fmt.Errorf("totp step: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fail(o.ID, "totp code used already")
		}
	}
	if o.Disabled {
		return fail(o.ID, "operator disabled")
	}
	sid := ids.Token(12)
	token, exp, err := s.signer.Issue(auth.Claims{UserID: o.ID, SessionID: sid, Role: o.Role}, now)
	if err != nil {
		return LoginResp{}, err
	}
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO operator_sessions (id, operator_id, ip, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
			sid, o.ID, trunc(c.ClientIP, 64), now.UTC(), exp.UTC()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE operators SET last_login_at = ? WHERE id = ?", now.UTC(), o.ID)
		return err
	})
	if err != nil {
		return LoginResp{}, fmt.Errorf("operator session: %w", err)
	}
	_ = s.rdb.Del(ctx, failKey(name)).Err()
	if err := s.audit(ctx, record{actorKind: KindOperator, actorID: o.ID, actorName: o.Username, action: "operator.login",
		targetKind: KindOperator, targetID: strconv.FormatInt(o.ID, 10), ip: c.ClientIP}); err != nil {
		return LoginResp{}, err
	}
	o.LastLogin = ms(now)
	return LoginResp{Token: token, ExpiresIn: int64(exp.Sub(now).Seconds()), Operator: o.Operator}, nil
}

func failKey(name string) string { return "admin:loginfail:" + name }

func (s *Service) loginLocked(ctx context.Context, name string) (bool, error) {
	n, err := s.rdb.Get(ctx, failKey(name)).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("login failures: %w", err)
	}
	return n >= s.cfg.LoginFailures, nil
}

// loginFailed counts and audits a failed operator login.
func (s *Service) loginFailed(ctx context.Context, name string, uid int64, why, ip string) {
	pipe := s.rdb.TxPipeline()
	pipe.Incr(ctx, failKey(name))
	pipe.ExpireNX(ctx, failKey(name), s.cfg.LoginWindow)
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.Warn().Err(err).Msg("count operator login failure")
	}
	err := s.audit(ctx, record{actorKind: KindOperator, actorID: max(uid, 0), actorName: trunc(name, 64), action: "operator.login_failed",
		targetKind: KindOperator, targetID: strconv.FormatInt(uid, 10), detail: why, ip: ip})
	if err != nil {
		s.log.Error().Err(err).Msg("audit operator login failure")
	}
}

func (s *Service) logout(ctx context.Context, a actor, _ Empty) (Empty, error) {
	if _, err := s.db.ExecContext(ctx, "UPDATE operator_sessions SET revoked_at = ? WHERE operator_id = ? AND revoked_at IS NULL AND id = ?",
		s.now().UTC(), a.ID, a.session); err != nil {
		return Empty{}, fmt.Errorf("operator logout: %w", err)
	}
	return Empty{}, s.audit(ctx, byOperator(a, "operator.logout", KindOperator, a.ID))
}

func (s *Service) me(ctx context.Context, a actor, _ Empty) (Operator, error) {
	o, err := scanOperator(s.db.QueryRowContext(ctx, "SELECT "+operatorColumns+" FROM operators WHERE id = ?", a.ID))
	if err != nil {
		return Operator{}, fmt.Errorf("load operator: %w", err)
	}
	return o.Operator, nil
}

// totpSetup starts a TOTP setup: a new secret, pending until admin.totp.enable
// gets a code from it. An operator with TOTP on changes it the same way.
func (s *Service) totpSetup(ctx context.Context, a actor, _ Empty) (TOTPSetup, error) {
	secret := newTOTPSecret()
	if _, err := s.db.ExecContext(ctx, "UPDATE operators SET totp_pending = ? WHERE id = ?", secret, a.ID); err != nil {
		return TOTPSetup{}, fmt.Errorf("totp setup: %w", err)
	}
	return TOTPSetup{Secret: secret, URI: totpURI(secret, a.Username)}, s.audit(ctx, byOperator(a, "operator.totp_setup", KindOperator, a.ID))
}

func (s *Service) totpEnable(ctx context.Context, a actor, r TOTPEnableReq) (Operator, error) {
	var pending sql.NullString
	if err := s.db.QueryRowContext(ctx, "SELECT totp_pending FROM operators WHERE id = ?", a.ID).Scan(&pending); err != nil {
		return Operator{}, fmt.Errorf("totp pending: %w", err)
	}
	if !pending.Valid {
		return Operator{}, imerr.New(imerr.Conflict, "no totp setup pending: call admin.totp.setup first")
	}
	step := totpCheck(pending.String, r.Code, s.now(), 0)
	if step == 0 {
		return Operator{}, imerr.New(imerr.BadRequest, "wrong code")
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE operators SET totp_secret = totp_pending, totp_pending = NULL, totp_last = ? WHERE id = ?", step, a.ID); err != nil {
		return Operator{}, fmt.Errorf("totp enable: %w", err)
	}
	if err := s.audit(ctx, byOperator(a, "operator.totp_enabled", KindOperator, a.ID)); err != nil {
		return Operator{}, err
	}
	return s.me(ctx, a, Empty{})
}

func (s *Service) operators(ctx context.Context, _ actor, r OperatorsReq) (OperatorsResp, error) {
	limit := min(max(r.Limit, 0), maxPage)
	if limit == 0 {
		limit = 50
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+operatorColumns+" FROM operators WHERE id > ? ORDER BY id LIMIT ?", r.After, limit+1)
	if err != nil {
		return OperatorsResp{}, fmt.Errorf("list operators: %w", err)
	}
	defer rows.Close()
	out := OperatorsResp{Operators: []Operator{}}
	for rows.Next() {
		o, err := scanOperator(rows)
		if err != nil {
			return OperatorsResp{}, err
		}
		if len(out.Operators) == limit {
			out.HasMore = true
			break
		}
		out.Operators = append(out.Operators, o.Operator)
	}
	return out, rows.Err()
}

func (s *Service) createOperator(ctx context.Context, a actor, r CreateOperatorReq) (Operator, error) {
	o, err := s.CreateOperator(ctx, r.Username, r.Password, r.Role)
	if err != nil {
		return Operator{}, err
	}
	rec := byOperator(a, "operator.create", KindOperator, o.ID)
	rec.after = map[string]any{"username": o.Username, "role": o.Role}
	return o, s.audit(ctx, rec)
}

// CreateOperator adds an operator (`go tool task admin:create` makes the first
// superadmin through it); the caller audits.
func (s *Service) CreateOperator(ctx context.Context, name, pw, role string) (Operator, error) {
	name, err := username.Canonical(name)
	if err != nil {
		return Operator{}, imerr.Wrap(imerr.BadRequest, err, "username: "+err.Error())
	}
	if roleRank(role) == 0 {
		return Operator{}, imerr.New(imerr.BadRequest, "role: superadmin, operator or auditor")
	}
	if err := validPassword(pw); err != nil {
		return Operator{}, imerr.Wrap(imerr.BadRequest, err, err.Error())
	}
	var hash string
	if err := s.argon(ctx, func() { hash = password.Hash(pw) }); err != nil {
		return Operator{}, err
	}
	res, err := s.db.ExecContext(ctx, "INSERT INTO operators (username, password_hash, role) VALUES (?, ?, ?)", name, hash, role)
	if db.IsDuplicate(err) {
		return Operator{}, imerr.New(imerr.Conflict, "operator %q exists", name)
	}
	if err != nil {
		return Operator{}, fmt.Errorf("insert operator: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Operator{}, err
	}
	o, err := scanOperator(s.db.QueryRowContext(ctx, "SELECT "+operatorColumns+" FROM operators WHERE id = ?", id))
	return o.Operator, err
}

// updateOperator changes an operator's role, password, TOTP or disabled flag and
// ends its sessions. An operator cannot change their own role or disable
// themselves (no locking the last superadmin out by mistake).
func (s *Service) updateOperator(ctx context.Context, a actor, r UpdateOperatorReq) (Operator, error) {
	if r.OperatorID == a.ID && (r.Role != nil || r.Disabled != nil) {
		return Operator{}, imerr.New(imerr.Forbidden, "you cannot change your own role or disable yourself")
	}
	var hash *string
	if r.Password != nil {
		var h string
		if err := s.argon(ctx, func() { h = password.Hash(*r.Password) }); err != nil {
			return Operator{}, err
		}
		hash = &h
	}
	var before, after operatorRow
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var err error
		before, err = scanOperator(tx.QueryRowContext(ctx, "SELECT "+operatorColumns+" FROM operators WHERE id = ? FOR UPDATE", r.OperatorID))
		if errors.Is(err, sql.ErrNoRows) {
			return imerr.New(imerr.NotFound, "operator %d not found", r.OperatorID)
		}
		if err != nil {
			return err
		}
		q := "UPDATE operators SET role = COALESCE(?, role), disabled = COALESCE(?, disabled), password_hash = COALESCE(?, password_hash)"
		if r.ResetTOTP {
			q += ", totp_secret = NULL, totp_pending = NULL"
		}
		if _, err := tx.ExecContext(ctx, q+" WHERE id = ?", r.Role, r.Disabled, hash, r.OperatorID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE operator_sessions SET revoked_at = ? WHERE operator_id = ? AND revoked_at IS NULL", s.now().UTC(), r.OperatorID); err != nil {
			return err
		}
		after, err = scanOperator(tx.QueryRowContext(ctx, "SELECT "+operatorColumns+" FROM operators WHERE id = ?", r.OperatorID))
		return err
	})
	if err != nil {
		return Operator{}, fmt.Errorf("update operator: %w", err)
	}
	rec := byOperator(a, "operator.update", KindOperator, r.OperatorID)
	view := func(o operatorRow) map[string]any {
		return map[string]any{"role": o.Role, "disabled": o.Disabled, "totp": o.TOTP}
	}
	rec.before, rec.after = view(before), view(after)
	if r.Password != nil {
		rec.detail = "password changed"
	}
	return after.Operator, s.audit(ctx, rec)
}

// AuditCreated records an operator made outside the API (functions
// admin-create) in the audit log, as the system's action.
func AuditCreated(ctx context.Context, d *sql.DB, o Operator) error {
	s := New(Deps{DB: d})
	return s.audit(ctx, record{actorKind: KindSystem, action: "operator.create", targetKind: KindOperator,
		targetID: strconv.FormatInt(o.ID, 10), after: map[string]any{"username": o.Username, "role": o.Role}, detail: "functions admin-create"})
}
