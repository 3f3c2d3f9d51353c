-- Failed logins are counted per account name from the audit log (login throttling).
CREATE INDEX audit_by_actor ON audit_log (actor, action, seq);
