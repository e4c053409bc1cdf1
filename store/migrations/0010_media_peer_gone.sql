-- An upload belongs to the peer that made it, by name (media.peer); a peer
-- added later under a removed peer's name must not see or send that peer's
-- uploads. When a peer goes, its uploads become nobody's (peer ''): only an
-- admin sees them, a message already queued with one still goes, and they
-- age out with the retention as any item does. (Webhooks go with their peer
-- by a foreign key; media cannot have one: received media have no peer.)
-- OR REPLACE: a failed migrate --to postgres removes the tables it made,
-- and with them the trigger, but not the function.
-- only: sqlite for next 3 lines
CREATE TRIGGER media_peer_gone AFTER DELETE ON peers BEGIN
	UPDATE media SET peer = '' WHERE peer = OLD.name;
END;
-- only: postgres until "end only"
CREATE OR REPLACE FUNCTION media_peer_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE media SET peer = '' WHERE peer = OLD.name;
	RETURN OLD;
END
$$;
CREATE TRIGGER media_peer_gone AFTER DELETE ON peers FOR EACH ROW EXECUTE FUNCTION media_peer_gone();
-- end only postgres
