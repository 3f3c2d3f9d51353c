-- A reopened approved case is withdrawn from the fines system: the outbox carries events (an approval, or the
-- withdrawal of one), and records when an entry was really sent (delivered_at also marks entries settled without
-- sending, such as an approval reopened before it went out).
ALTER TABLE webhook_outbox ADD COLUMN event TEXT NOT NULL DEFAULT 'case.approved';
ALTER TABLE webhook_outbox ADD COLUMN sent_at TEXT;
UPDATE webhook_outbox SET sent_at = delivered_at
    WHERE delivered_at IS NOT NULL AND (last_error IS NULL OR last_error NOT LIKE 'withdrawn:%');
-- Every withdrawal, in order: the export API's feed of cases the fines system must drop.
CREATE TABLE withdrawals (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    evidence_id   TEXT NOT NULL,
    approved_at   TEXT NOT NULL,
    withdrawn_at  TEXT NOT NULL,
    withdrawn_by  TEXT NOT NULL,
    reason        TEXT NOT NULL
);
