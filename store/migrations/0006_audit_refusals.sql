-- Refusals (nothing was done) are aggregated: one row per peer, method,
-- route and status per interval, standing for count requests from at to
-- last_at. Single rows have count 1 and no last_at. Status 0 marks a
-- request that was being served (its row is committed before the handler
-- runs) when the appliance stopped.
ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN last_at INTEGER;
-- The retention prunes by time.
CREATE INDEX audit_at ON audit(at);
