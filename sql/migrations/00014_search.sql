-- +goose Up
-- Message search (functions/search). The indexer, a durable consumer of the
-- message events, keeps one search_docs row per searchable message (its text in
-- its latest version; recalled and system messages have none) and its tokens in
-- search_postings. Tokens are computed in Go (the first 8 bytes of each word
-- and of each pair of CJK characters, big-endian, so that a prefix is a range
-- of tokens), so neither InnoDB's minimum token size nor its stopwords apply
-- and MariaDB and MySQL 8 behave alike.
-- search_postings is keyed (conv_id, token, seq): a query reads, for each of
-- the caller's conversations, the range of tokens of one query word, and a
-- conversation's postings sit together, so the pages one user's searches read
-- are few (their conversations') whatever the words, and a new message's
-- postings go to one place. It carries the message id too, so that the newest
-- matches are chosen before any document is read.
CREATE TABLE search_docs (
  conv_id   VARCHAR(64)     NOT NULL,
  seq       BIGINT UNSIGNED NOT NULL,
  msg_id    BIGINT UNSIGNED NOT NULL,
  sender_id BIGINT UNSIGNED NOT NULL,
  kind      VARCHAR(16)     NOT NULL,
  sent_at   DATETIME(3)     NOT NULL,
  mod_seq   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  body      TEXT            CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  PRIMARY KEY (conv_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

CREATE TABLE search_postings (
  conv_id VARCHAR(64)     NOT NULL,
  token   BIGINT UNSIGNED NOT NULL,
  seq     BIGINT UNSIGNED NOT NULL,
  msg_id  BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (conv_id, token, seq)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- user.search by the beginning of a nickname, case-insensitively (nickname is
-- utf8mb4_bin): a lower-cased copy the database keeps, indexed.
ALTER TABLE users
  ADD COLUMN nickname_lc VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin AS (LOWER(nickname)) STORED,
  ADD KEY ix_users_nickname_lc (nickname_lc);

-- Who may find a user with user.search: everyone, friends or nobody.
ALTER TABLE user_privacy ADD COLUMN search VARCHAR(16) NOT NULL DEFAULT 'everyone';

-- +goose Down
ALTER TABLE user_privacy DROP COLUMN search;
ALTER TABLE users DROP KEY ix_users_nickname_lc, DROP COLUMN nickname_lc;
DROP TABLE search_postings;
DROP TABLE search_docs;
