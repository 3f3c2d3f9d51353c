-- The vehicle's plate as the box decided it (NULL: no plate seen, or unreadable), for search and review.
ALTER TABLE evidence ADD COLUMN plate_text TEXT;
CREATE INDEX evidence_plate ON evidence (plate_text);
