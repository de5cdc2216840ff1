-- +goose Up
-- Risk control (functions/risk) and runtime settings (functions/settings).

-- Sensitive words. word is stored folded (lower case, full-width forms as
-- half-width: functions/risk/words), so one word has one row. action: block
-- refuses the text, mask replaces each matched character with '*', review
-- lets a message through and queues it for an operator.
CREATE TABLE sensitive_words (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  word       VARCHAR(64)     NOT NULL,
  category   VARCHAR(32)     NOT NULL DEFAULT '',
  action     VARCHAR(8)      NOT NULL,
  created_by BIGINT UNSIGNED NOT NULL DEFAULT 0,
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uk_sensitive_words_word (word)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The review queue: messages a "review" word flagged, and users' reports of a
-- message or a user. status: pending, approved, deleted. A report is kept once
-- per reporter and target (uk_review_items_report); a flag once per message.
CREATE TABLE review_items (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  source      VARCHAR(8)      NOT NULL,             -- word | report
  kind        VARCHAR(8)      NOT NULL,             -- message | user
  conv_id     VARCHAR(64)     NOT NULL DEFAULT '',
  seq         BIGINT UNSIGNED NOT NULL DEFAULT 0,
  target_user BIGINT UNSIGNED NOT NULL,             -- the sender, or the reported user
  reporter_id BIGINT UNSIGNED NOT NULL DEFAULT 0,   -- 0 for a word flag
  reason      VARCHAR(32)     NOT NULL DEFAULT '',
  note        VARCHAR(500)    NOT NULL DEFAULT '',
  excerpt     VARCHAR(2000)   NOT NULL DEFAULT '',  -- the text as flagged or reported
  words       VARCHAR(500)    NOT NULL DEFAULT '',  -- the review words that matched
  status      VARCHAR(8)      NOT NULL DEFAULT 'pending',
  handled_by  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  handled_at  DATETIME(3)     NULL,
  created_at  DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uk_review_items_report (source, reporter_id, kind, conv_id, seq, target_user),
  KEY ix_review_items_status (status, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Config items: only keys the code knows (shared/dynconf.Keys) are stored; a
-- key without a row has its default. value is JSON of the key's type. version
-- grows with each change so that workers apply changes in order.
CREATE TABLE config_items (
  name       VARCHAR(64)     NOT NULL,
  value      VARCHAR(1024)   NOT NULL,
  version    BIGINT UNSIGNED NOT NULL DEFAULT 1,
  updated_by BIGINT UNSIGNED NOT NULL DEFAULT 0,
  updated_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Feature flags: on for everyone (enabled), else for percent of the users by a
-- stable hash of the flag and the user id; overrides (JSON {"<user id>": bool},
-- bounded) win over both.
CREATE TABLE feature_flags (
  name        VARCHAR(64)     NOT NULL,
  description VARCHAR(255)    NOT NULL DEFAULT '',
  enabled     BOOLEAN         NOT NULL DEFAULT FALSE,
  percent     TINYINT UNSIGNED NOT NULL DEFAULT 0,
  overrides   MEDIUMTEXT      NOT NULL,
  version     BIGINT UNSIGNED NOT NULL DEFAULT 1,
  updated_by  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  updated_at  DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Per-user send rate overrides (messages per second and per minute, 1:1 and
-- group); NULL takes the global policy (config items rate.*). Rows are never
-- deleted, only cleared, so versions only grow.
CREATE TABLE rate_overrides (
  user_id           BIGINT UNSIGNED NOT NULL,
  direct_per_second INT NULL,
  direct_per_minute INT NULL,
  group_per_second  INT NULL,
  group_per_minute  INT NULL,
  version           BIGINT UNSIGNED NOT NULL DEFAULT 1,
  updated_by        BIGINT UNSIGNED NOT NULL DEFAULT 0,
  updated_at        DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- +goose Down
DROP TABLE rate_overrides;
DROP TABLE feature_flags;
DROP TABLE config_items;
DROP TABLE review_items;
DROP TABLE sensitive_words;
