-- PostgreSQL twin of ../sqlite/0012_device_incidents.sql.
CREATE TABLE device_incidents (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    detail           TEXT NOT NULL,
    opened_at        TEXT NOT NULL,
    closed_at        TEXT,
    opened_sent_at   TEXT,
    closed_sent_at   TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT
);
CREATE UNIQUE INDEX device_incident_open ON device_incidents (device_id, kind) WHERE closed_at IS NULL;
