-- PostgreSQL twin of ../sqlite/0007_export.sql (same tables; times are RFC 3339 UTC text in both).
-- Approved cases waiting for the fines system's webhook: written in the approval's transaction, so an approval
-- is never lost between the review and the hand-off; retried with backoff until the receiver answers 2xx.
CREATE TABLE webhook_outbox (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    evidence_id      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    delivered_at     TEXT,
    last_error       TEXT
);
CREATE INDEX webhook_due ON webhook_outbox (delivered_at, next_attempt_at);
