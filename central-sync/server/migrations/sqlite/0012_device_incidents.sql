-- Device health incidents (a box offline, its evidence store's alarm, its clock untrusted): opened when the
-- condition is first seen, closed when it clears, each opening and closing announced once to the operators'
-- webhook. At most one open incident per device and kind.
CREATE TABLE device_incidents (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    detail           TEXT NOT NULL,
    opened_at        TEXT NOT NULL,
    closed_at        TEXT,
    opened_sent_at   TEXT,
    closed_sent_at   TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT
);
CREATE UNIQUE INDEX device_incident_open ON device_incidents (device_id, kind) WHERE closed_at IS NULL;
