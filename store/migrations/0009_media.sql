-- media: every upload (POST /v1/media) and every inbound attachment. An
-- upload is written ready, with its bytes; inbound media is reserved
-- pending in the transaction that appends its message.received event,
-- and later completed (ready) or failed by the downloader. The bytes of a
-- ready item are, on SQLite, the file media/<id> in the state directory
-- (written, fsynced and renamed before this row commits) and, on
-- PostgreSQL, its media_chunks rows, so every appliance sharing the
-- database reads them: written with the row (state 'uploading', invisible)
-- in one transaction, then made 'ready' under the quota. peer is the uploader
-- (uploads), session the session it came to (inbound). source is the
-- downloader's opaque JSON (direct path, keys, hashes); attempts counts
-- how often the downloader took the item up. Times are Unix nanoseconds.
CREATE TABLE media (
	id         TEXT PRIMARY KEY,
	sha256     TEXT NOT NULL DEFAULT '',
	size       INTEGER NOT NULL,
	type       TEXT NOT NULL,
	filename   TEXT NOT NULL DEFAULT '',
	state      TEXT NOT NULL,
	error      TEXT NOT NULL DEFAULT '',
	session    TEXT NOT NULL DEFAULT '',
	peer       TEXT NOT NULL DEFAULT '',
	source     BLOB,
	attempts   INTEGER NOT NULL DEFAULT 0,
	width      INTEGER NOT NULL DEFAULT 0,
	height     INTEGER NOT NULL DEFAULT 0,
	seconds    INTEGER NOT NULL DEFAULT 0,
	thumbnail  BLOB,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX media_age ON media(created_at, id);
CREATE INDEX media_pending ON media(session, state, created_at);
-- media_chunks: the bytes of a ready item on PostgreSQL, in rows of 1 MiB
-- (n from 0). SQLite keeps files instead, but has the table too, empty:
-- `waappliance migrate` copies every table between the engines and needs
-- the same ones on both (and a state moved from PostgreSQL to SQLite then
-- still reads its media from here).
CREATE TABLE media_chunks (
	media_id TEXT NOT NULL REFERENCES media(id) ON DELETE CASCADE,
	n        INTEGER NOT NULL,
	data     BLOB NOT NULL,
	PRIMARY KEY (media_id, n)
);
-- A queued message names its media here (whatsapp's send of a media kind);
-- eviction and pruning never remove an item a queued row references.
ALTER TABLE outbox ADD COLUMN media_id TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_media ON outbox(media_id) WHERE media_id <> '';
