-- +goose Up
-- Offline push (functions/push). One provider token per device of a user: a device
-- registering again replaces its token. session_id is the session that registered
-- it: the session's end (logout, a new login on the device, a reused refresh
-- token) removes it. A token belongs to one device: registering it for another
-- user or device moves it (uk_push_tokens_token).
CREATE TABLE push_tokens (
  user_id    BIGINT UNSIGNED NOT NULL,
  device_id  VARCHAR(64)     NOT NULL,
  session_id VARCHAR(32)     NOT NULL,
  platform   VARCHAR(16)     NOT NULL,
  token      VARCHAR(512)    NOT NULL,
  locale     VARCHAR(35)     NOT NULL DEFAULT '',
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (user_id, device_id),
  UNIQUE KEY uk_push_tokens_token (platform, token),
  KEY ix_push_tokens_session (session_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- A row only for users who changed a setting; absent means the defaults.
-- hide_content: pushes say "New message" instead of the sender and the text.
CREATE TABLE push_settings (
  user_id      BIGINT UNSIGNED NOT NULL,
  hide_content BOOLEAN         NOT NULL DEFAULT FALSE,
  updated_at   DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- +goose Down
DROP TABLE push_settings;
DROP TABLE push_tokens;
