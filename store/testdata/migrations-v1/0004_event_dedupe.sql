-- dedupe_key makes an event idempotent: the log holds at most one event per
-- (session, type, dedupe_key). Inbound messages carry their chat, sender and
-- WhatsApp message id here, so a message WhatsApp redelivers (the appliance
-- stopped after committing the event and before its ack went out) is acked
-- again but logged once. The key lives in its event's row, so pruning the
-- event frees it and the index stays as bounded as the log. Events without a
-- key (NULL: every other type, and rows older than this migration) never
-- conflict.
ALTER TABLE events ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX events_dedupe ON events(session, type, dedupe_key) WHERE dedupe_key IS NOT NULL;
