package media_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"waappliance/internal/pgtest"
	"waappliance/media"
	"waappliance/store"
)

// env is one engine's database and a media store on it, with a clock the
// test moves.
type env struct {
	db  *store.DB
	st  *media.Store
	dir string
	now time.Time
}

func open(t *testing.T, dsn string, max int64) *env {
	t.Helper()
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state")
	db, err := store.OpenDSN(ctx, dsn, store.Options{Dir: state, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, dir: filepath.Join(state, "media"), now: time.Unix(1_800_000_000, 0)}
	e.st, err = media.New(db, e.dir, media.Options{MaxBytes: max, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// png is a tiny valid-looking PNG header followed by filler: enough for
// the signature check.
func pngBytes(n int) []byte {
	b := bytes.Repeat([]byte{7}, n)
	copy(b, "\x89PNG\r\n\x1a\n")
	return b
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func readAll(t *testing.T, st *media.Store, id string) []byte {
	t.Helper()
	_, r, err := st.Open(context.Background(), id)
	if err != nil {
		t.Fatalf("Open %s: %v", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// leftovers is what the media dir holds besides the files of ids.
func (e *env) leftovers(t *testing.T, ids ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range ents {
		keep := false
		for _, id := range ids {
			keep = keep || en.Name() == id
		}
		if !keep {
			out = append(out, en.Name())
		}
	}
	return out
}

func (e *env) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPutOpen(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e := open(t, dsn, 0)
		ctx := context.Background()
		data := pngBytes(3*media.ChunkSize + 12345) // several chunks on PostgreSQL, the last one short
		it, err := e.st.Put(ctx, "alice", "image/PNG; x=y", "cat.png", int64(len(data)), bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if it.Type != "image/png" || it.Size != int64(len(data)) || it.SHA256 != sum(data) || it.State != media.StateReady || it.Peer != "alice" || it.Filename != "cat.png" {
			t.Fatalf("item %+v", it)
		}
		got, err := e.st.Get(ctx, it.ID)
		if err != nil || got.SHA256 != it.SHA256 || got.Peer != "alice" || !got.CreatedAt.Equal(it.CreatedAt) {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if b := readAll(t, e.st, it.ID); !bytes.Equal(b, data) {
			t.Fatalf("read back %d bytes, not the %d put", len(b), len(data))
		}
		// Seeking across a chunk boundary (Range).
		_, r, err := e.st.Open(ctx, it.ID)
		if err != nil {
			t.Fatal(err)
		}
		off := int64(media.ChunkSize - 10)
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		part := make([]byte, 20)
		if _, err := io.ReadFull(r, part); err != nil || !bytes.Equal(part, data[off:off+20]) {
			t.Fatalf("range read %v", err)
		}
		if end, err := r.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
			t.Fatalf("seek end = %d, %v", end, err)
		}
		r.Close()
		if dsn == "" {
			if n := e.count(t, "media_chunks"); n != 0 {
				t.Fatalf("SQLite wrote %d chunks", n)
			}
			st, err := os.Stat(filepath.Join(e.dir, it.ID))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("file: %v %v", st, err)
			}
		} else if n := e.count(t, "media_chunks"); n != 4 {
			t.Fatalf("%d chunks, want 4", n)
		}
		if st, err := os.Stat(e.dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("dir: %v %v", st, err)
		}
		if left := e.leftovers(t, it.ID); len(left) != 0 {
			t.Fatalf("left in the dir: %v", left)
		}
		if _, _, err := e.st.Open(ctx, "../../etc/passwd"); !errors.Is(err, media.ErrNotFound) {
			t.Fatalf("Open of a path = %v", err)
		}
		if _, err := e.st.Get(ctx, strings.Repeat("0", 32)); !errors.Is(err, media.ErrNotFound) {
			t.Fatalf("Get unknown = %v", err)
		}
	})
}

// shortReader gives n bytes of b, then fails as a client that hung up.
type shortReader struct {
	b []byte
	n int
}

func (s *shortReader) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := copy(p, s.b[:min(len(s.b), s.n, len(p))])
	s.b, s.n = s.b[k:], s.n-k
	return k, nil
}

func TestPutRefusesAndLeavesNothing(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e := open(t, dsn, 10<<20)
		ctx := context.Background()
		png := pngBytes(5000)
		cases := []struct {
			name, typ, file string
			size            int64
			body            io.Reader
			want            error
		}{
			{"mismatch", "image/jpeg", "", 5000, bytes.NewReader(png), media.ErrTypeMismatch},
			{"html as text", "text/plain", "", 9, strings.NewReader("\x00\x01binary!"), media.ErrTypeMismatch},
			{"unknown type", "application/x-evil", "", 5000, bytes.NewReader(png), media.ErrUnsupportedType},
			{"no type", "", "", 5000, bytes.NewReader(png), media.ErrUnsupportedType},
			{"svg", "image/svg+xml", "", 5000, bytes.NewReader(png), media.ErrUnsupportedType},
			{"over kind limit", "image/png", "", media.MaxSize(media.KindImage) + 1, bytes.NewReader(png), media.ErrTooLarge},
			{"over quota", "application/octet-stream", "", 11 << 20, bytes.NewReader(png), media.ErrQuota},
			{"short head", "image/png", "", 5000, &shortReader{png, 100}, media.ErrShortBody},
			{"short body", "image/png", "", 5000, &shortReader{png, 4000}, media.ErrShortBody},
			{"empty", "image/png", "", 0, strings.NewReader(""), media.ErrEmpty},
			{"control char", "image/png", "a\nb.png", 5000, bytes.NewReader(png), media.ErrBadFilename},
			{"rtl override", "image/png", "gpj\u202e.exe", 5000, bytes.NewReader(png), media.ErrBadFilename},
			{"path", "image/png", "../x.png", 5000, bytes.NewReader(png), media.ErrBadFilename},
			{"dotdot", "image/png", "..", 5000, bytes.NewReader(png), media.ErrBadFilename},
			{"long name", "image/png", strings.Repeat("a", 256), 5000, bytes.NewReader(png), media.ErrBadFilename},
		}
		for _, c := range cases {
			_, err := e.st.Put(ctx, "alice", c.typ, c.file, c.size, c.body)
			if !errors.Is(err, c.want) {
				t.Errorf("%s: err %v, want %v", c.name, err, c.want)
			}
		}
		if n := e.count(t, "media"); n != 0 {
			t.Fatalf("%d rows left", n)
		}
		if n := e.count(t, "media_chunks"); n != 0 {
			t.Fatalf("%d chunks left", n)
		}
		if left := e.leftovers(t); len(left) != 0 {
			t.Fatalf("left in the dir: %v", left)
		}
	})
}

func TestSignatures(t *testing.T) {
	ok := map[string]string{
		"image/jpeg":      "\xff\xd8\xff\xe0\x00\x10JFIF",
		"image/gif":       "GIF89a....",
		"image/webp":      "RIFF\x00\x00\x00\x00WEBPVP8 ",
		"video/mp4":       "\x00\x00\x00\x18ftypmp42",
		"audio/ogg":       "OggS\x00\x02",
		"audio/mpeg":      "ID3\x04\x00",
		"audio/aac":       "\xff\xf1\x50\x80",
		"audio/amr":       "#!AMR\n",
		"application/pdf": "%PDF-1.7\n",
		"image/heic":      "\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",
		"audio/wav":       "RIFF\x00\x00\x00\x00WAVEfmt ",
		"video/webm":      "\x1a\x45\xdf\xa3\x01",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document": "PK\x03\x04....",
		"text/csv":                 "a,b,c\n1,2,ü\n",
		"application/octet-stream": "\x00\x01\x02",
	}
	ctx := context.Background()
	e := open(t, "", 0)
	for typ, head := range ok {
		if _, err := e.st.Put(ctx, "p", typ, "", int64(len(head)), strings.NewReader(head)); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		if typ == "application/octet-stream" {
			continue
		}
		// The same bytes under another type's name are refused.
		other := "application/pdf"
		if typ == other {
			other = "image/jpeg"
		}
		if _, err := e.st.Put(ctx, "p", other, "", int64(len(head)), strings.NewReader(head)); !errors.Is(err, media.ErrTypeMismatch) {
			t.Errorf("%s as %s: %v", typ, other, err)
		}
	}
}

func TestKinds(t *testing.T) {
	for typ, kind := range map[string]string{"image/webp": "image", "image/jpeg; q=1": "image", "video/mp4": "video",
		"audio/ogg; codecs=opus": "audio", "application/pdf": "document", "foo/bar": "document", "image/svg+xml": "document"} {
		if got := media.KindOf(typ); got != kind {
			t.Errorf("KindOf(%s) = %s, want %s", typ, got, kind)
		}
	}
	for _, c := range []struct {
		kind, typ string
		ok        bool
	}{{"image", "image/png", true}, {"image", "image/webp", false}, {"sticker", "image/webp", true}, {"video", "video/3gpp", true},
		{"audio", "audio/ogg; codecs=opus", true}, {"audio", "video/mp4", false}, {"document", "image/png", true}} {
		if media.Fits(c.kind, c.typ) != c.ok {
			t.Errorf("Fits(%s, %s) != %v", c.kind, c.typ, c.ok)
		}
	}
	if media.MaxSize(media.KindDocument) < 100<<20 {
		t.Errorf("documents must take 100 MB")
	}
}

// queue inserts a queued outbox row naming media id (what a send of a
// media kind writes).
func (e *env) queue(t *testing.T, id, status string) {
	t.Helper()
	ctx := context.Background()
	_, err := e.db.ExecContext(ctx, `INSERT INTO sessions (name, state, created_at, updated_at) VALUES ('s', 'connected', 0, 0) ON CONFLICT DO NOTHING`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.db.ExecContext(ctx, `INSERT INTO outbox (id, session, peer, to_jid, text, status, next_attempt_at, created_at, updated_at, media_id)
		VALUES ($1, 's', 'p', 'x@s.whatsapp.net', '', $2, 0, 0, 0, $3)`, "msg-"+id, status, id)
	if err != nil {
		t.Fatal(err)
	}
}

func TestQuotaEvictsOldestFirstButNotQueued(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		const unit = 1 << 20
		e := open(t, dsn, 4*unit)
		ctx := context.Background()
		put := func() media.Item {
			t.Helper()
			e.now = e.now.Add(time.Second)
			b := pngBytes(unit)
			b[100] = byte(e.now.Unix()) // distinct bytes
			it, err := e.st.Put(ctx, "p", "image/png", "", unit, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			return it
		}
		a, b, c, d := put(), put(), put(), put()
		e.queue(t, a.ID, "queued") // the oldest is needed by a queued message
		e.queue(t, c.ID, "sent")   // a sent one no longer holds its media
		f := put()                 // evicts b (a is held)
		gone := func(it media.Item) bool {
			_, err := e.st.Get(ctx, it.ID)
			return errors.Is(err, media.ErrNotFound)
		}
		if gone(a) || !gone(b) || gone(c) || gone(d) || gone(f) {
			t.Fatalf("after one eviction: a %v b %v c %v d %v f %v", gone(a), gone(b), gone(c), gone(d), gone(f))
		}
		g := put() // evicts c
		if !gone(c) || gone(a) || gone(d) {
			t.Fatalf("second eviction took the wrong one")
		}
		if b := readAll(t, e.st, a.ID); sum(b) != a.SHA256 {
			t.Fatal("the held item changed")
		}
		if left := e.leftovers(t, a.ID, d.ID, f.ID, g.ID); len(left) != 0 {
			t.Fatalf("left in the dir: %v", left)
		}
		// All but the held one queued: nothing evictable is left, 507.
		e.queue(t, d.ID, "queued")
		e.queue(t, f.ID, "queued")
		e.queue(t, g.ID, "queued")
		b2 := pngBytes(unit)
		if _, err := e.st.Put(ctx, "p", "image/png", "", unit, bytes.NewReader(b2)); !errors.Is(err, media.ErrQuota) {
			t.Fatalf("Put with every item held = %v", err)
		}
		if n := e.count(t, "media"); n != 4 {
			t.Fatalf("%d rows, want 4", n)
		}
		if left := e.leftovers(t, a.ID, d.ID, f.ID, g.ID); len(left) != 0 {
			t.Fatalf("left in the dir: %v", left)
		}
	})
}

func TestInboundAndPrune(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e := open(t, dsn, 0)
		ctx := context.Background()
		var it media.Item
		err := e.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			it, err = e.st.ReserveTx(ctx, tx, media.Reservation{Session: "shop", Type: "application/pdf; x=1", Filename: "../in\x07voice.pdf", Size: 9, Source: []byte(`{"k":1}`)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if it.State != media.StatePending || it.Filename != ".._in_voice.pdf" || it.Type != "application/pdf" {
			t.Fatalf("reserved %+v", it)
		}
		if _, _, err := e.st.Open(ctx, it.ID); !errors.Is(err, media.ErrPending) {
			t.Fatalf("Open pending = %v", err)
		}
		for want := 1; want <= 2; want++ {
			ps, err := e.st.Pending(ctx, "shop", 10)
			if err != nil || len(ps) != 1 || ps[0].ID != it.ID || string(ps[0].Source) != `{"k":1}` || ps[0].Attempts != want {
				t.Fatalf("Pending = %+v, %v", ps, err)
			}
		}
		if ps, _ := e.st.Pending(ctx, "other", 10); len(ps) != 0 {
			t.Fatalf("another session's pending: %+v", ps)
		}
		if err := e.st.SetSource(ctx, it.ID, []byte(`{"k":2}`)); err != nil {
			t.Fatal(err)
		}
		if ps, _ := e.st.Pending(ctx, "shop", 10); string(ps[0].Source) != `{"k":2}` || ps[0].Attempts != 1 {
			t.Fatalf("after SetSource: %+v", ps)
		}
		// A failing also rolls the completion back: still pending, no bytes.
		data := []byte("%PDF-1.4 hello")
		f, _ := e.st.TempFile()
		f.Write(data)
		if _, err := e.st.Complete(ctx, it.ID, f, func(context.Context, *sql.Tx, media.Item) error { return errors.New("boom") }); err == nil {
			t.Fatal("Complete with a failing also succeeded")
		}
		if got, _ := e.st.Get(ctx, it.ID); got.State != media.StatePending {
			t.Fatalf("after a failed Complete: %+v", got)
		}
		if left := e.leftovers(t); len(left) != 0 {
			t.Fatalf("left in the dir: %v", left)
		}
		f, _ = e.st.TempFile()
		f.Write(data)
		var seen *media.Item // what also is given: the item as it becomes ready
		done, err := e.st.Complete(ctx, it.ID, f, func(ctx context.Context, tx *sql.Tx, it media.Item) error { seen = &it; return nil })
		if err != nil || seen == nil || done.State != media.StateReady || done.SHA256 != sum(data) || done.Size != int64(len(data)) || done.Session != "shop" {
			t.Fatalf("Complete = %+v, %v (also given %+v)", done, err, seen)
		}
		if !reflect.DeepEqual(*seen, done) {
			t.Fatalf("also was given %+v, Complete returned %+v", *seen, done)
		}
		if b := readAll(t, e.st, it.ID); !bytes.Equal(b, data) {
			t.Fatal("completed bytes differ")
		}
		if left := e.leftovers(t, it.ID); len(left) != 0 {
			t.Fatalf("left in the dir: %v", left)
		}
		if ps, _ := e.st.Pending(ctx, "shop", 10); len(ps) != 0 {
			t.Fatalf("still pending: %+v", ps)
		}

		// A second one fails.
		var it2 media.Item
		e.now = e.now.Add(time.Hour)
		e.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			it2, err = e.st.ReserveTx(ctx, tx, media.Reservation{Session: "shop", Type: "image/jpeg", Size: 5})
			return err
		})
		if err := e.st.Fail(ctx, it2.ID, "expired\nat WhatsApp", nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.st.Open(ctx, it2.ID); !errors.Is(err, media.ErrFailed) {
			t.Fatalf("Open failed = %v", err)
		}
		if err := e.st.Fail(ctx, it2.ID, "again", nil); !errors.Is(err, media.ErrNotFound) {
			t.Fatalf("Fail twice = %v", err)
		}
		// A third stays pending, a fourth is an upload a queued message holds.
		var it3 media.Item
		e.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			it3, err = e.st.ReserveTx(ctx, tx, media.Reservation{Session: "shop", Type: "image/jpeg", Size: 5})
			return err
		})
		up, err := e.st.Put(ctx, "p", "image/png", "", 100, bytes.NewReader(pngBytes(100)))
		if err != nil {
			t.Fatal(err)
		}
		e.queue(t, up.ID, "queued")
		n, err := e.st.Prune(ctx, e.now.Add(time.Minute))
		if err != nil || n != 2 {
			t.Fatalf("Prune = %d, %v; want the ready and the failed one", n, err)
		}
		for _, id := range []string{it.ID, it2.ID} {
			if _, err := e.st.Get(ctx, id); !errors.Is(err, media.ErrNotFound) {
				t.Fatalf("%s survived the prune", id)
			}
		}
		for _, id := range []string{it3.ID, up.ID} {
			if _, err := e.st.Get(ctx, id); err != nil {
				t.Fatalf("%s pruned: %v", id, err)
			}
		}
		if left := e.leftovers(t, up.ID); len(left) != 0 {
			t.Fatalf("left in the dir: %v", left)
		}
	})
}

// A crash leaves temporary files (and, between an eviction's commit and
// its file removal, files without a row): New sweeps them.
func TestNewSweeps(t *testing.T) {
	e := open(t, "", 0)
	ctx := context.Background()
	it, err := e.st.Put(ctx, "p", "image/png", "", 100, bytes.NewReader(pngBytes(100)))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := e.st.TempFile()
	f.Close()
	orphan := filepath.Join(e.dir, strings.Repeat("a", 32))
	os.WriteFile(orphan, []byte("x"), 0o600)
	other := filepath.Join(e.dir, "README")
	os.WriteFile(other, []byte("x"), 0o600)
	if _, err := media.New(e.db, e.dir, media.Options{}); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(t, it.ID); len(left) != 1 || left[0] != "README" {
		t.Fatalf("after New: %v", left)
	}
}

// Uploads in progress hold their size of the quota: two that would not
// both fit are not both received (their temporary files would fill the
// disk before the quota is applied at commit).
func TestInflightHoldsQuota(t *testing.T) {
	e := open(t, "", 1<<20)
	ctx := context.Background()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := e.st.Put(ctx, "p", "image/png", "", 600<<10, pr)
		done <- err
	}()
	if _, err := pw.Write(pngBytes(1000)); err != nil { // the first is being received
		t.Fatal(err)
	}
	if _, err := e.st.Put(ctx, "p", "image/png", "", 600<<10, bytes.NewReader(pngBytes(600<<10))); !errors.Is(err, media.ErrQuota) {
		t.Fatalf("second upload while the first holds the quota: %v", err)
	}
	pw.Write(make([]byte, 600<<10-1000))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Done: the next one is received (and evicts the first).
	if _, err := e.st.Put(ctx, "p", "image/png", "", 600<<10, bytes.NewReader(pngBytes(600<<10))); err != nil {
		t.Fatal(err)
	}
}

// An upload staged on PostgreSQL but not yet made ready (state
// "uploading") is invisible, survives Prune and eviction, and is swept by
// New once stale (a crash between its two transactions).
func TestStagedUploadsInvisibleAndSwept(t *testing.T) {
	pgtest.ForEngines(t, func(t *testing.T, dsn string) {
		e := open(t, dsn, 0)
		ctx := context.Background()
		ins := func(id string, at time.Time) {
			if _, err := e.db.ExecContext(ctx, `INSERT INTO media (id, size, type, state, created_at, updated_at) VALUES ($1, 5, 'image/png', 'uploading', $2, $2)`, id, at.UnixNano()); err != nil {
				t.Fatal(err)
			}
		}
		stale, fresh := strings.Repeat("a", 32), strings.Repeat("b", 32)
		ins(stale, e.now.Add(-2*time.Hour))
		ins(fresh, e.now.Add(-time.Minute))
		for _, id := range []string{stale, fresh} {
			if _, err := e.st.Get(ctx, id); !errors.Is(err, media.ErrNotFound) {
				t.Fatalf("Get of a staged upload: %v", err)
			}
		}
		if n, err := e.st.Prune(ctx, e.now); err != nil || n != 0 {
			t.Fatalf("Prune took %d staged uploads (%v)", n, err)
		}
		if _, err := media.New(e.db, e.dir, media.Options{Now: func() time.Time { return e.now }}); err != nil {
			t.Fatal(err)
		}
		var ids []string
		rows, _ := e.db.QueryContext(ctx, `SELECT id FROM media ORDER BY id`)
		for rows.Next() {
			var id string
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		if len(ids) != 1 || ids[0] != fresh {
			t.Fatalf("after New: %v, want only the fresh one", ids)
		}
	})
}

// Clients' names for accepted types are taken and stored under the type's
// own name.
func TestAliases(t *testing.T) {
	e := open(t, "", 0)
	for alias, want := range map[string]string{"image/jpg": "image/jpeg", "audio/x-m4a": "audio/mp4", "audio/opus": "audio/ogg", "IMAGE/PJPEG; q=1": "image/jpeg"} {
		head := map[string]string{"image/jpeg": "\xff\xd8\xff\xe0", "audio/mp4": "\x00\x00\x00\x18ftypM4A ", "audio/ogg": "OggS\x00\x02"}[want]
		it, err := e.st.Put(context.Background(), "p", alias, "", int64(len(head)), strings.NewReader(head))
		if err != nil || it.Type != want {
			t.Errorf("%s: %+v %v", alias, it, err)
		}
	}
	if !media.Fits(media.KindImage, "image/jpg") || !media.Fits(media.KindAudio, "audio/x-m4a") {
		t.Error("Fits does not know the aliases")
	}
}
