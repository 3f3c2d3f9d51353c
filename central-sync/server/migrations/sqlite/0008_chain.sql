-- Each record's place in its device's hash chain, as columns: the case page checks the link to the
-- predecessor, and `central-sync chain verify` finds gaps (records never received) and broken links.
ALTER TABLE evidence ADD COLUMN sequence BIGINT;
ALTER TABLE evidence ADD COLUMN previous_record_sha256 TEXT;
CREATE INDEX evidence_chain ON evidence (device_id, sequence);
-- Records stored before: from the record as the box sent it.
UPDATE evidence SET sequence = json_extract(record_json, '$.sequence'),
    previous_record_sha256 = json_extract(record_json, '$.previous_record_sha256');
