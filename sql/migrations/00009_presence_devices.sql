-- +goose Up
-- When a user was last online (set when their presence goes offline); Redis holds
-- who is online now.
ALTER TABLE users ADD COLUMN last_seen_at DATETIME(3) NULL;
-- Who may see my presence: everyone, friends or nobody.
ALTER TABLE user_privacy ADD COLUMN presence VARCHAR(16) NOT NULL DEFAULT 'friends';
-- Per device: the app version it logged in with, and its last connection.
ALTER TABLE sessions ADD COLUMN app_version VARCHAR(32) NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN last_ip VARCHAR(45) NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN last_active_at DATETIME(3) NULL;
-- A deleted account keeps its row (ids stay unique, messages keep their sender),
-- anonymised, with this set.
ALTER TABLE users ADD COLUMN deleted_at DATETIME(3) NULL;

-- +goose Down
ALTER TABLE users DROP COLUMN deleted_at;
ALTER TABLE sessions DROP COLUMN last_active_at;
ALTER TABLE sessions DROP COLUMN last_ip;
ALTER TABLE sessions DROP COLUMN app_version;
ALTER TABLE user_privacy DROP COLUMN presence;
ALTER TABLE users DROP COLUMN last_seen_at;
