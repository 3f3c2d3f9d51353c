-- PostgreSQL twin of ../sqlite/0010_withdrawal.sql.
ALTER TABLE webhook_outbox ADD COLUMN event TEXT NOT NULL DEFAULT 'case.approved';
ALTER TABLE webhook_outbox ADD COLUMN sent_at TEXT;
UPDATE webhook_outbox SET sent_at = delivered_at
    WHERE delivered_at IS NOT NULL AND (last_error IS NULL OR last_error NOT LIKE 'withdrawn:%');
CREATE TABLE withdrawals (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    evidence_id   TEXT NOT NULL,
    approved_at   TEXT NOT NULL,
    withdrawn_at  TEXT NOT NULL,
    withdrawn_by  TEXT NOT NULL,
    reason        TEXT NOT NULL
);
