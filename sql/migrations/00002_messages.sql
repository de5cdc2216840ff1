-- +goose Up
-- A conversation is "d:<low user>:<high user>" (1:1) or "g:<group id>". last_seq is
-- the seq allocator: a send bumps it in the same transaction that inserts the
-- message, so seqs are gap-free and never reused whatever happens to Redis.
CREATE TABLE conversations (
  id          VARCHAR(64)     NOT NULL,
  kind        TINYINT         NOT NULL,
  last_seq    BIGINT UNSIGNED NOT NULL DEFAULT 0,
  last_msg_at DATETIME(3)     NULL,
  created_at  DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- min_seq hides a conversation's earlier messages from this member (a group member
-- who joined after them, when the group does not show history to newcomers).
CREATE TABLE conversation_members (
  user_id    BIGINT UNSIGNED NOT NULL,
  conv_id    VARCHAR(64)     NOT NULL,
  min_seq    BIGINT UNSIGNED NOT NULL DEFAULT 0,
  read_seq   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (user_id, conv_id),
  KEY ix_members_conv (conv_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- (conv_id, sender_id, client_msg_id) makes a retried send find its first result.
CREATE TABLE messages (
  conv_id       VARCHAR(64)     NOT NULL,
  seq           BIGINT UNSIGNED NOT NULL,
  id            BIGINT UNSIGNED NOT NULL,
  sender_id     BIGINT UNSIGNED NOT NULL,
  client_msg_id VARCHAR(64)     NOT NULL,
  kind          VARCHAR(16)     NOT NULL,
  content       MEDIUMTEXT      CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  created_at    DATETIME(3)     NOT NULL,
  PRIMARY KEY (conv_id, seq),
  UNIQUE KEY uk_messages_id (id),
  UNIQUE KEY uk_messages_client (conv_id, sender_id, client_msg_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- +goose Down
DROP TABLE messages;
DROP TABLE conversation_members;
DROP TABLE conversations;
