-- PostgreSQL twin of ../sqlite/0011_review_claims.sql.
CREATE TABLE review_claims (
    evidence_id  TEXT PRIMARY KEY,
    officer      TEXT NOT NULL,
    claimed_at   TEXT NOT NULL
);
