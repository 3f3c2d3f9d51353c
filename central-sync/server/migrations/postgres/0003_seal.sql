-- PostgreSQL twin of ../sqlite/0003_seal.sql (same tables; times are RFC 3339 UTC text in both).
-- Each record's seal (hash + Ed25519 signature + public key) as the box sent it.
ALTER TABLE evidence ADD COLUMN seal_json TEXT;
ALTER TABLE evidence ADD COLUMN record_sha256 TEXT;
-- The key each device seals with, pinned on its first upload (trust on first use) until device registration
-- replaces it: a record from a known device sealed by another key is refused.
CREATE TABLE device_keys (
    device_id   TEXT PRIMARY KEY NOT NULL,
    public_key  TEXT NOT NULL,
    first_seen  TEXT NOT NULL
);
