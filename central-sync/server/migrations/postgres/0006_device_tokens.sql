-- PostgreSQL twin of ../sqlite/0006_device_tokens.sql (same tables; times are RFC 3339 UTC text in both).
-- Registered devices' upload tokens (only the SHA-256 is kept). A registered device's key is pinned in
-- device_keys at registration; it must send its token with every upload and heartbeat.
CREATE TABLE device_tokens (
    token_sha256   TEXT PRIMARY KEY NOT NULL,
    device_id      TEXT NOT NULL UNIQUE,
    registered_at  TEXT NOT NULL
);
