-- +goose Up
-- Usernames are stored in their canonical form (shared/username: width folded,
-- lower case, NFC, then ASCII only) and compared byte for byte, so that what
-- register refused cannot log in through a collation that folds it.
UPDATE users SET username = LOWER(username);
ALTER TABLE users MODIFY username VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
-- A register retried with the same key gets its first answer; without it a taken
-- username is a conflict, whatever the password.
ALTER TABLE users ADD COLUMN register_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL;
-- The refresh token a rotation replaced: presenting it again means it was stolen,
-- and the session ends.
ALTER TABLE sessions ADD COLUMN prev_refresh_hash BINARY(32) NULL;
-- Who may add me to groups: everyone, friends or nobody.
ALTER TABLE user_privacy ADD COLUMN add_to_groups VARCHAR(16) NOT NULL DEFAULT 'everyone';

-- +goose Down
ALTER TABLE user_privacy DROP COLUMN add_to_groups;
ALTER TABLE sessions DROP COLUMN prev_refresh_hash;
ALTER TABLE users DROP COLUMN register_key;
ALTER TABLE users MODIFY username VARCHAR(32) NOT NULL COLLATE utf8mb4_unicode_ci;
