-- PostgreSQL twin of ../sqlite/0005_review.sql (same tables; times are RFC 3339 UTC text in both).
-- Officers who review evidence. Passwords are Argon2id PHC strings; nothing else about a password is kept.
CREATE TABLE users (
    username       TEXT PRIMARY KEY NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('reviewer', 'supervisor', 'admin')),
    created_at     TEXT NOT NULL,
    disabled       BIGINT NOT NULL DEFAULT 0
);
-- Browser sessions (cookie) and API tokens (Bearer): only the SHA-256 of the secret is stored.
CREATE TABLE sessions (
    token_sha256  TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL REFERENCES users (username),
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE TABLE api_tokens (
    token_sha256  TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('reviewer', 'supervisor', 'admin', 'export')),
    created_at    TEXT NOT NULL
);
-- The review decision beside the record; the record as the box sealed it (record_json) never changes.
ALTER TABLE evidence ADD COLUMN corrected_plate TEXT;
ALTER TABLE evidence ADD COLUMN decided_by TEXT;
ALTER TABLE evidence ADD COLUMN decided_at TEXT;
ALTER TABLE evidence ADD COLUMN reject_reason TEXT;
-- Every action of every person, append-only and hash-chained: entry_sha256 covers the entry and the previous
-- entry's hash, so a changed or removed entry breaks the chain (`central-sync audit verify`).
CREATE TABLE audit_log (
    seq           BIGINT PRIMARY KEY NOT NULL,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    evidence_id   TEXT,
    detail        TEXT NOT NULL,
    prev_sha256   TEXT NOT NULL,
    entry_sha256  TEXT NOT NULL
);
CREATE INDEX audit_by_evidence ON audit_log (evidence_id, seq);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
-- TRUNCATE skips row triggers: refuse it too.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
