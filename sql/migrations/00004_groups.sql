-- +goose Up
-- "groups" is reserved in MySQL 8, hence chat_groups. member_count is kept in the
-- same transaction as every join/leave and checked against max_members there, so the
-- cap holds under concurrent joins.
CREATE TABLE chat_groups (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  owner_id        BIGINT UNSIGNED NOT NULL,
  name            VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  avatar          VARCHAR(512) NOT NULL DEFAULT '',
  intro           VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  join_policy     VARCHAR(16)  NOT NULL DEFAULT 'approval',
  history_visible BOOLEAN      NOT NULL DEFAULT FALSE,
  mute_all        BOOLEAN      NOT NULL DEFAULT FALSE,
  member_count    INT UNSIGNED NOT NULL DEFAULT 0,
  max_members     INT UNSIGNED NOT NULL,
  client_id       VARCHAR(64)  NULL, -- the creator's idempotency key: a retried create finds its group
  dismissed_at    DATETIME(3)  NULL,
  created_at      DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at      DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uk_groups_client (owner_id, client_id),
  KEY ix_groups_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- role: 0 member, 1 admin, 2 owner (functions/group/perm).
CREATE TABLE group_members (
  group_id    BIGINT UNSIGNED NOT NULL,
  user_id     BIGINT UNSIGNED NOT NULL,
  role        TINYINT         NOT NULL DEFAULT 0,
  muted_until DATETIME(3)     NULL,
  invited_by  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  joined_at   DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (group_id, user_id),
  KEY ix_group_members_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

CREATE TABLE group_join_requests (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  group_id   BIGINT UNSIGNED NOT NULL,
  user_id    BIGINT UNSIGNED NOT NULL,
  message    VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  status     VARCHAR(16)     NOT NULL DEFAULT 'pending',
  handled_by BIGINT UNSIGNED NOT NULL DEFAULT 0,
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uk_join_requests (group_id, user_id),
  KEY ix_join_requests_pending (group_id, status, id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

CREATE TABLE group_announcements (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  group_id   BIGINT UNSIGNED NOT NULL,
  author_id  BIGINT UNSIGNED NOT NULL,
  text       TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  client_id  VARCHAR(64)     NOT NULL,
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uk_announcements_client (group_id, author_id, client_id),
  KEY ix_announcements_group (group_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- +goose Down
DROP TABLE group_announcements;
DROP TABLE group_join_requests;
DROP TABLE group_members;
DROP TABLE chat_groups;
