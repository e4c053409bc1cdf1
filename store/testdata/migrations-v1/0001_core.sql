-- settings holds the appliance's own configuration, one row per key. The
-- server private key lives here (the file is 0600 and never logged).
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

-- peers: every WireGuard key that may reach the API. addr is UNIQUE so two
-- peers can never share an AllowedIPs prefix (wireguard-go would silently
-- move it to the newer one).
CREATE TABLE peers (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	name          TEXT NOT NULL UNIQUE,
	public_key    TEXT NOT NULL UNIQUE,
	preshared_key TEXT NOT NULL,
	addr          TEXT NOT NULL UNIQUE,
	scopes        TEXT NOT NULL,
	sessions      TEXT NOT NULL DEFAULT '',
	rate          REAL NOT NULL,
	burst         INTEGER NOT NULL,
	expires_at    INTEGER,
	disabled      INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

-- generation counts every peer change; a running appliance polls it to pick
-- up changes made by the CLI in another process.
INSERT INTO settings(key, value) VALUES ('peers_generation', '0');

-- audit: every mutating API request, durably.
CREATE TABLE audit (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	at         INTEGER NOT NULL,
	peer       TEXT NOT NULL,
	method     TEXT NOT NULL,
	route      TEXT NOT NULL,
	target     TEXT NOT NULL DEFAULT '',
	status     INTEGER NOT NULL,
	request_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_peer ON audit(peer, id);
