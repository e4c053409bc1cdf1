-- The outbox stores what a message says as one JSON document of its kind
-- (whatsapp.Content: {"kind":"text","text":{"body":…},"reply_to":{…}}), so a
-- new kind needs no new columns. request_hash is a SHA-256 of the request
-- as the API received it (recipient and content), which an Idempotency-Key
-- replay must match.
--
-- text and reply_to stay, readable: rows from before this migration keep
-- them (their request_hash is '', and a replay of one of them is compared
-- field by field as before); new rows write ''. Dropping a NOT NULL column
-- is a table rebuild on SQLite, and a rebuild of the outbox is not worth
-- two empty columns.
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';
ALTER TABLE outbox ADD COLUMN content TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
-- Old replies quoted the recipient as the sender (what the sender then
-- sent); the backfill keeps that, so a queued old reply goes out as it
-- would have.
-- only: sqlite for next 4 lines
UPDATE outbox SET content = CASE WHEN reply_to = ''
	THEN json_object('kind', 'text', 'text', json_object('body', text))
	ELSE json_object('kind', 'text', 'text', json_object('body', text), 'reply_to', json_object('chat', to_jid, 'sender', to_jid, 'id', reply_to))
	END;
-- only: postgres for next 4 lines
UPDATE outbox SET content = CASE WHEN reply_to = ''
	THEN json_build_object('kind', 'text', 'text', json_build_object('body', text))::text
	ELSE json_build_object('kind', 'text', 'text', json_build_object('body', text), 'reply_to', json_build_object('chat', to_jid, 'sender', to_jid, 'id', reply_to))::text
	END;
