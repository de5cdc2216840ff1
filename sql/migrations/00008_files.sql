-- +goose Up
-- Files live in S3; these rows are their metadata and who may see them.
--
-- files: one upload. status 0 = pending (begun, not completed: the sweeper deletes
-- it and its object after FILE_PENDING_TTL), 1 = ready. object_key is where the
-- bytes are: "f/<id>" as uploaded, or, once deduplicated, the key of an earlier
-- file with the same SHA-256 (the object of the lowest id keeps its own key).
-- sha256 is computed by the file worker from the bytes (never the client's word);
-- declared_sha256 is what the client said. processed: 0 waiting for the worker
-- (hash, thumbnail), 1 done, 2 failed (no thumbnail). thumb_key is set once the
-- worker stored the thumbnail. deduped_at: when the file moved to an earlier
-- file's object; its own object is deleted by the sweeper once the presigned
-- URLs that may name it have expired, and deduped_at is cleared.
CREATE TABLE files (
  id              BIGINT UNSIGNED NOT NULL,
  owner_id        BIGINT UNSIGNED NOT NULL,
  purpose         VARCHAR(16)     NOT NULL,
  status          TINYINT         NOT NULL DEFAULT 0,
  name            VARCHAR(255)    CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  size            BIGINT UNSIGNED NOT NULL,
  mime            VARCHAR(127)    NOT NULL,
  kind            VARCHAR(8)      NOT NULL,
  declared_sha256 BINARY(32)      NULL,
  sha256          BINARY(32)      NULL,
  object_key      VARCHAR(128)    NOT NULL,
  upload_id       VARCHAR(255)    NULL,
  parts           INT UNSIGNED    NOT NULL DEFAULT 0,
  width           INT UNSIGNED    NOT NULL DEFAULT 0,
  height          INT UNSIGNED    NOT NULL DEFAULT 0,
  duration_ms     INT UNSIGNED    NOT NULL DEFAULT 0,
  processed       TINYINT         NOT NULL DEFAULT 0,
  deduped_at      DATETIME(3)     NULL,
  thumb_key       VARCHAR(128)    NULL,
  thumb_width     INT UNSIGNED    NOT NULL DEFAULT 0,
  thumb_height    INT UNSIGNED    NOT NULL DEFAULT 0,
  created_at      DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  ready_at        DATETIME(3)     NULL,
  PRIMARY KEY (id),
  KEY ix_files_owner (owner_id, status, id),
  KEY ix_files_owner_time (owner_id, created_at),
  KEY ix_files_pending (status, created_at),
  KEY ix_files_sha (sha256),
  KEY ix_files_deduped (deduped_at)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- message_files: a media message's file, written before the message is stored and
-- joined to messages by their unique client key, so that a send that never
-- committed grants nothing. Members see a file while a message of theirs that
-- carries it is visible to them and not recalled.
CREATE TABLE message_files (
  file_id       BIGINT UNSIGNED NOT NULL,
  conv_id       VARCHAR(64)     NOT NULL,
  sender_id     BIGINT UNSIGNED NOT NULL,
  client_msg_id VARCHAR(64)     NOT NULL,
  kind          VARCHAR(8)      NOT NULL,
  created_at    DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (file_id, conv_id, sender_id, client_msg_id),
  KEY ix_message_files_conv (conv_id, kind)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- favorites: a user's saved messages (a snapshot: type, content, sender, time),
-- files and notes. dedupe_key makes fav.add idempotent ("m:<message id>",
-- "f:<file id>", "n:<client key>"). file_id is the file a favorite keeps
-- downloadable for its user (a file favorite, or a saved media message).
CREATE TABLE favorites (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id    BIGINT UNSIGNED NOT NULL,
  kind       VARCHAR(8)      NOT NULL,
  dedupe_key VARCHAR(80)     NOT NULL,
  conv_id    VARCHAR(64)     NULL,
  seq        BIGINT UNSIGNED NOT NULL DEFAULT 0,
  msg_id     BIGINT UNSIGNED NOT NULL DEFAULT 0,
  sender_id  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  msg_type   VARCHAR(16)     NOT NULL DEFAULT '',
  content    MEDIUMTEXT      CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  file_id    BIGINT UNSIGNED NOT NULL DEFAULT 0,
  sent_at    DATETIME(3)     NULL,
  created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uk_favorites_key (user_id, dedupe_key),
  KEY ix_favorites_user (user_id, kind, id),
  KEY ix_favorites_file (file_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

CREATE TABLE favorite_tags (
  user_id BIGINT UNSIGNED NOT NULL,
  tag     VARCHAR(32)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  fav_id  BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (user_id, tag, fav_id),
  KEY ix_favorite_tags_fav (fav_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- +goose Down
DROP TABLE favorite_tags;
DROP TABLE favorites;
DROP TABLE message_files;
DROP TABLE files;
