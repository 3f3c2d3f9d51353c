-- PostgreSQL twin of ../sqlite/0002_plate.sql (same tables; times are RFC 3339 UTC text in both).
-- The vehicle's plate as the box decided it (NULL: no plate seen, or unreadable), for search and review.
ALTER TABLE evidence ADD COLUMN plate_text TEXT;
CREATE INDEX evidence_plate ON evidence (plate_text);
