-- Per-peer caps on what one peer may hold open at once: concurrent TCP
-- connections to the API and concurrent event streams. NULL means the
-- appliance's default (serve --peer-max-conns, --peer-max-streams), so a
-- default changed later reaches every peer that never had its own.
ALTER TABLE peers ADD COLUMN max_conns INTEGER;
ALTER TABLE peers ADD COLUMN max_streams INTEGER;
