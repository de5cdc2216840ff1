-- +goose Up
-- One row per direction and pair: re-sending, re-opening after a decline or a
-- delete, and a mutual request all reuse it. status: pending, accepted, declined,
-- cancelled. Every write to a pair's rows (here, friendships, blocks) first locks
-- both users' rows in id order (functions/friend), which serialises concurrent
-- requests between the same two users.
CREATE TABLE friend_requests (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  from_id    BIGINT UNSIGNED NOT NULL,
  to_id      BIGINT UNSIGNED NOT NULL,
  message    VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  status     VARCHAR(16)     NOT NULL DEFAULT 'pending',
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uk_friend_requests_pair (from_id, to_id),
  -- friend.requests pages by id, newest first, with and without a status filter.
  KEY ix_friend_requests_to (to_id, id),
  KEY ix_friend_requests_to_status (to_id, status, id),
  KEY ix_friend_requests_from (from_id, id),
  KEY ix_friend_requests_from_status (from_id, status, id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- Both directions of a friendship are stored; each side has its own remark.
CREATE TABLE friendships (
  user_id    BIGINT UNSIGNED NOT NULL,
  friend_id  BIGINT UNSIGNED NOT NULL,
  remark     VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (user_id, friend_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- user_id blocked blocked_id.
CREATE TABLE blocks (
  user_id    BIGINT UNSIGNED NOT NULL,
  blocked_id BIGINT UNSIGNED NOT NULL,
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (user_id, blocked_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- A row only for users who changed a setting; absent means the defaults
-- (friend_requests 'everyone', messages 'friends').
CREATE TABLE user_privacy (
  user_id         BIGINT UNSIGNED NOT NULL,
  friend_requests VARCHAR(16)     NOT NULL DEFAULT 'everyone',
  messages        VARCHAR(16)     NOT NULL DEFAULT 'friends',
  updated_at      DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- +goose Down
DROP TABLE user_privacy;
DROP TABLE blocks;
DROP TABLE friendships;
DROP TABLE friend_requests;
