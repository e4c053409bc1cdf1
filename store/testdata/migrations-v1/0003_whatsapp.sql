-- sessions: one WhatsApp account linked as a companion device. The device's
-- keys live in whatsmeow's own tables (sqlstore) in this same database; jid
-- links the two once paired.
CREATE TABLE sessions (
	name              TEXT PRIMARY KEY,
	jid               TEXT NOT NULL DEFAULT '',
	push_name         TEXT NOT NULL DEFAULT '',
	state             TEXT NOT NULL,
	last_connected_at INTEGER,
	last_error        TEXT NOT NULL DEFAULT '',
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL
);

-- outbox: every accepted send, committed before the API answers 202. id is
-- the WhatsApp message id, assigned at enqueue and reused by every retry.
CREATE TABLE outbox (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	id              TEXT NOT NULL UNIQUE,
	session         TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
	peer            TEXT NOT NULL,
	idem_key        TEXT,
	to_jid          TEXT NOT NULL,
	text            TEXT NOT NULL,
	reply_to        TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	error           TEXT NOT NULL DEFAULT '',
	server_ts       INTEGER,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	UNIQUE (peer, idem_key)
);
CREATE INDEX outbox_pending ON outbox(session, status, seq);

CREATE TABLE outbox_history (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id TEXT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
	at         INTEGER NOT NULL,
	status     TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_history_msg ON outbox_history(message_id, id);

-- A second per-peer budget, for messages per minute.
ALTER TABLE peers ADD COLUMN send_per_minute INTEGER NOT NULL DEFAULT 60;
