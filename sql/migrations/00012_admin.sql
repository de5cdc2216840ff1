-- +goose Up
-- The back office (functions/admin). Operators are not chat users: their own
-- table, ids and tokens. role: superadmin, operator or auditor. totp_secret (base32)
-- turns on the second factor; totp_pending is a secret being set up, until a code
-- from it confirms it.
CREATE TABLE operators (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  username      VARCHAR(32)     NOT NULL,
  password_hash VARCHAR(255)    NOT NULL,
  role          VARCHAR(16)     NOT NULL,
  totp_secret   VARCHAR(64)     NULL,
  totp_pending  VARCHAR(64)     NULL,
  totp_last     BIGINT          NOT NULL DEFAULT 0,
  disabled      BOOLEAN         NOT NULL DEFAULT FALSE,
  created_at    DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at    DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  last_login_at DATETIME(3)     NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_operators_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- One row per operator login; a token names its session, and every admin call
-- checks it is live (admin.logout, a disabled operator or a role change end it).
CREATE TABLE operator_sessions (
  id          VARCHAR(32)     NOT NULL,
  operator_id BIGINT UNSIGNED NOT NULL,
  ip          VARCHAR(64)     NOT NULL DEFAULT '',
  created_at  DATETIME(3)     NOT NULL,
  expires_at  DATETIME(3)     NOT NULL,
  revoked_at  DATETIME(3)     NULL,
  PRIMARY KEY (id),
  KEY ix_operator_sessions_operator (operator_id, revoked_at)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- The audit log: every admin action and security event. Append-only: no op
-- updates or deletes a row, and the triggers below refuse it to anyone else too
-- (dropping them is a migration, itself visible in the schema's history).
-- actor_kind: operator, user or system; before/after: JSON of what changed.
CREATE TABLE audit_log (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  at          DATETIME(3)     NOT NULL,
  actor_kind  VARCHAR(16)     NOT NULL,
  actor_id    BIGINT UNSIGNED NOT NULL DEFAULT 0,
  actor_name  VARCHAR(64)     NOT NULL DEFAULT '',
  action      VARCHAR(64)     NOT NULL,
  target_kind VARCHAR(16)     NOT NULL DEFAULT '',
  target_id   VARCHAR(64)     NOT NULL DEFAULT '',
  before_json TEXT            NULL,
  after_json  TEXT            NULL,
  detail      VARCHAR(512)    NOT NULL DEFAULT '',
  ip          VARCHAR(64)     NOT NULL DEFAULT '',
  PRIMARY KEY (id),
  KEY ix_audit_at (at),
  KEY ix_audit_actor (actor_kind, actor_id, id),
  KEY ix_audit_target (target_kind, target_id, id),
  KEY ix_audit_action (action, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_log is append-only';
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_log is append-only';
-- +goose StatementEnd

-- A ban may end by itself: banned with banned_until in the past is not banned.
ALTER TABLE users ADD COLUMN banned_until DATETIME(3) NULL, ADD COLUMN ban_reason VARCHAR(256) NOT NULL DEFAULT '';

-- Alert rules of the monitoring page: metric above (or below) threshold for
-- duration_s fires to webhook; state and since are the rule's current state.
CREATE TABLE alert_rules (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  name        VARCHAR(64)     NOT NULL,
  metric      VARCHAR(64)     NOT NULL,
  op          VARCHAR(2)      NOT NULL,
  threshold   DOUBLE          NOT NULL,
  duration_s  INT             NOT NULL,
  webhook     VARCHAR(512)    NOT NULL DEFAULT '',
  enabled     BOOLEAN         NOT NULL DEFAULT TRUE,
  state       VARCHAR(16)     NOT NULL DEFAULT 'ok',
  since       DATETIME(3)     NULL,
  value       DOUBLE          NOT NULL DEFAULT 0,
  updated_at  DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uk_alert_rules_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE alert_rules;
ALTER TABLE users DROP COLUMN ban_reason, DROP COLUMN banned_until;
DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP TABLE audit_log;
DROP TABLE operator_sessions;
DROP TABLE operators;
