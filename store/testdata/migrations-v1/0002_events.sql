-- events: the durable, append-only event log. AUTOINCREMENT keeps ids
-- monotonic even after pruning, so an id is a resume cursor.
CREATE TABLE events (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at      INTEGER NOT NULL,
	session TEXT NOT NULL,
	type    TEXT NOT NULL,
	data    TEXT NOT NULL
);
CREATE INDEX events_session ON events(session, id);
CREATE INDEX events_at ON events(at);
-- events_pruned_through is the highest id ever pruned: a cursor below it
-- would miss events, so it is refused rather than served with a gap.
INSERT INTO settings(key, value) VALUES ('events_pruned_through', '0');
