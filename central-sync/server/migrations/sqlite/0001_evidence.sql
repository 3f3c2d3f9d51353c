-- Evidence records received from edge boxes. One row per evidence id, ever: the id is the idempotency key.
CREATE TABLE evidence (
    evidence_id      TEXT PRIMARY KEY NOT NULL,
    device_id        TEXT NOT NULL,
    camera_id        TEXT NOT NULL,
    location         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    vehicle_class    TEXT NOT NULL,
    captured_at      TEXT NOT NULL,
    received_at      TEXT NOT NULL,
    overview_sha256  TEXT NOT NULL,
    -- the record exactly as the box sent it, so nothing the box said is lost to the column mapping
    record_json      TEXT NOT NULL,
    review_status    TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX evidence_queue ON evidence (review_status, captured_at);
CREATE INDEX evidence_camera ON evidence (camera_id, captured_at);
