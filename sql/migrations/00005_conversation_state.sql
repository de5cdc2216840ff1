-- +goose Up
-- Per-member conversation state for the conversation list, and message lifecycle
-- (edit, recall, reactions).
--
-- conversation_members:
--   target_id   the peer (1:1) or the group, so the list joins names without parsing ids
--   read_seq    read cursor; unread = last_seq - GREATEST(read_seq, min_seq). A send
--               moves the sender's cursor to its message, so no own message is unread.
--   mention_seq the last seq that mentioned this member; "mentioned" = mention_seq > read_seq
--   hidden_seq  hidden from the list until last_seq passes it
-- conversations.last_mod / messages.mod_seq: a per-conversation counter bumped by every
-- edit, recall and reaction, so sync can return messages changed since a device's
-- mod cursor without giving those changes seqs of their own (which would count as unread).
ALTER TABLE conversations
  ADD COLUMN last_mod BIGINT UNSIGNED NOT NULL DEFAULT 0;

ALTER TABLE conversation_members
  ADD COLUMN target_id   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN mention_seq BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN hidden_seq  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN pinned_at   DATETIME(3) NULL,
  ADD COLUMN muted       BOOLEAN NOT NULL DEFAULT FALSE,
  ADD KEY ix_members_read (conv_id, read_seq);

ALTER TABLE messages
  ADD COLUMN mod_seq     BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN edit_count  INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN edited_at   DATETIME(3) NULL,
  ADD COLUMN recalled_by BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ADD KEY ix_messages_mod (conv_id, mod_seq);

CREATE TABLE message_reactions (
  conv_id    VARCHAR(64)     NOT NULL,
  seq        BIGINT UNSIGNED NOT NULL,
  emoji      VARCHAR(32)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  user_id    BIGINT UNSIGNED NOT NULL,
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (conv_id, seq, emoji, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- +goose Down
DROP TABLE message_reactions;
ALTER TABLE messages DROP KEY ix_messages_mod, DROP COLUMN recalled_by, DROP COLUMN edited_at, DROP COLUMN edit_count, DROP COLUMN mod_seq;
ALTER TABLE conversation_members DROP KEY ix_members_read, DROP COLUMN muted, DROP COLUMN pinned_at, DROP COLUMN hidden_seq, DROP COLUMN mention_seq, DROP COLUMN target_id;
ALTER TABLE conversations DROP COLUMN last_mod;
