-- +goose Up
-- members_version counts membership changes, so workers can cache a group's member
-- list for fan-out and know exactly when it is stale (the send path reads the
-- version with the sender's standing, at no extra cost).
ALTER TABLE chat_groups ADD COLUMN members_version BIGINT UNSIGNED NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE chat_groups DROP COLUMN members_version;
