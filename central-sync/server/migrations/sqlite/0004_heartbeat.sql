-- Each device's latest heartbeat (queue depth, disk, clock, cameras), replaced on every report.
CREATE TABLE device_heartbeats (
    device_id       TEXT PRIMARY KEY NOT NULL,
    received_at     TEXT NOT NULL,
    heartbeat_json  TEXT NOT NULL
);
