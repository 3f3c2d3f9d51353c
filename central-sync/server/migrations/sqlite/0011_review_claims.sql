-- Who has a case open: a second officer opening it sees that it is being reviewed, and "next case" passes it
-- by. A claim lapses on its own (the service compares claimed_at with a time-to-live); a decision removes it.
CREATE TABLE review_claims (
    evidence_id  TEXT PRIMARY KEY,
    officer      TEXT NOT NULL,
    claimed_at   TEXT NOT NULL
);
