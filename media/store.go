package media

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"waappliance/store"
)

// DefaultMaxBytes is the quota when Options.MaxBytes is 0: 1 GiB, a share
// of a Raspberry Pi's SD card that leaves room for the database.
const DefaultMaxBytes = 1 << 30

// ChunkSize is the size of a media_chunks row (PostgreSQL), the last one of
// an item shorter.
const ChunkSize = 1 << 20

// tempPrefix starts the names of temporary files in the directory; New
// removes those a crash left behind.
const tempPrefix = "tmp-"

// Options configure New. Zero values: MaxBytes 0 is DefaultMaxBytes (a
// negative MaxBytes is no quota), Now nil is time.Now.
type Options struct {
	MaxBytes int64
	Now      func() time.Time
}

// Store is the media store. It is safe for concurrent use.
type Store struct {
	db    *store.DB
	dir   string
	max   int64
	now   func() time.Time
	stage chan struct{} // stageChunks' semaphore
	// inflight is the bytes of uploads being received: together they
	// may not exceed the quota, so that concurrent uploads cannot fill
	// the disk with temporary files before the quota is applied at
	// commit.
	inflight atomic.Int64
}

// New opens the media store of db with its files in dir, which is made
// 0700 (created when missing). Temporary files a crash left there, and on
// SQLite files no row names (an eviction whose removal a crash cut short),
// are removed: one process serves a state (its lock), so none is in use.
// Item files with a looser mode (a restored copy) are made 0600 again.
func New(db *store.DB, dir string, opt Options) (*Store, error) {
	if opt.MaxBytes == 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	s := &Store{db: db, dir: dir, max: opt.MaxBytes, now: opt.Now, stage: make(chan struct{}, stagers)}
	if err := s.sweep(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) sweep(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM media WHERE state = $1 AND created_at < $2`, stateUploading, s.now().Add(-staleUpload).UnixNano()); err != nil {
		return fmt.Errorf("media: sweep: %w", err)
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	var known map[string]bool // the ids with a row, read once there are files to judge
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tempPrefix):
			os.Remove(filepath.Join(s.dir, name))
		case validID(name):
			if known == nil {
				if known, err = s.ids(ctx); err != nil {
					return fmt.Errorf("media: sweep: %w", err)
				}
			}
			if !known[name] {
				os.Remove(filepath.Join(s.dir, name))
			} else if info, err := e.Info(); err == nil && info.Mode().Perm() != 0o600 {
				os.Chmod(filepath.Join(s.dir, name), 0o600) // a restored copy: private again
			}
		}
	}
	return nil
}

// ids is every item id with a row.
func (s *Store) ids(ctx context.Context) (map[string]bool, error) {
	ids, err := store.Strings(ctx, s.db, `SELECT id FROM media`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// newID is 128 random bits in hex: the only thing that names a file.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID reports whether id has newID's form.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Store) path(id string) string { return filepath.Join(s.dir, id) }

// TempFile is a new temporary file in the store's directory, 0600, for
// whatsmeow's DownloadToFile (then Complete) or an upload reader. The
// caller removes it unless Complete takes it.
func (s *Store) TempFile() (*os.File, error) {
	f, err := os.CreateTemp(s.dir, tempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	return f, nil // CreateTemp makes it 0600
}

// CheckFilename is the file name of an upload as stored: "" stays "";
// control characters (C0, DEL, C1, and Unicode format characters such as
// right-to-left overrides), path separators, "." and "..", invalid UTF-8
// and names over MaxFilename bytes are ErrBadFilename. The name is only
// ever shown (Content-Disposition, WhatsApp's document name), never part
// of a path.
func CheckFilename(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	if len(name) > MaxFilename || !utf8.ValidString(name) || name == "." || name == ".." || strings.TrimSpace(name) == "" {
		return "", ErrBadFilename
	}
	for _, r := range name {
		if r == '/' || r == '\\' || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", ErrBadFilename
		}
	}
	return name, nil
}

// cleanFilename is an inbound file name (any sender chose it) made safe to
// show: what CheckFilename refuses is replaced by "_", the result cut to
// MaxFilename bytes.
func cleanFilename(name string) string {
	name = strings.ToValidUTF8(name, "_")
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '_'
		}
		return r
	}, name)
	for len(name) > MaxFilename {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	if name == "." || name == ".." || strings.TrimSpace(name) == "" {
		return ""
	}
	return name
}

// readErr marks an error of the body (the client), apart from one of the
// disk.
type readErr struct{ err error }

func (e readErr) Error() string { return e.err.Error() }
func (e readErr) Unwrap() error { return e.err }

type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = readErr{err}
	}
	return n, err
}

// Put stores an upload of peer: exactly size bytes of body, of the media
// type mediaType (parameters ignored), with an optional file name. It
// checks, before reading, the type (ErrUnsupportedType), the kind's limit
// (ErrTooLarge), the quota (ErrQuota) and the name (ErrBadFilename); then
// the first bytes against the type's signature (ErrTypeMismatch); then
// streams the rest to a temporary file while hashing it. The item is
// durable when Put returns it. On any error nothing is left behind.
func (s *Store) Put(ctx context.Context, peer, mediaType, filename string, size int64, body io.Reader) (Item, error) {
	t := Normalize(mediaType)
	ti, ok := types[t]
	if !ok {
		return Item{}, fmt.Errorf("%w: %q", ErrUnsupportedType, mediaType)
	}
	name, err := CheckFilename(filename)
	if err != nil {
		return Item{}, err
	}
	if size <= 0 {
		return Item{}, ErrEmpty
	}
	if size > MaxSize(ti.kind) {
		return Item{}, fmt.Errorf("%w: %d bytes, the limit of %s is %d", ErrTooLarge, size, ti.kind, MaxSize(ti.kind))
	}
	if s.max > 0 && size > s.max {
		return Item{}, fmt.Errorf("%w: %d bytes, the quota is %d", ErrQuota, size, s.max)
	}
	if s.max > 0 {
		if n := s.inflight.Add(size); n > s.max {
			s.inflight.Add(-size)
			return Item{}, fmt.Errorf("%w: uploads in progress hold %d of the quota %d; retry when they are done", ErrQuota, n-size, s.max)
		}
		defer s.inflight.Add(-size)
	}
	body = bodyReader{body}
	head := make([]byte, min(size, SniffLen))
	if _, err := io.ReadFull(body, head); err != nil {
		return Item{}, shortBody(err)
	}
	if !checkSignature(t, head) {
		return Item{}, fmt.Errorf("%w: declared %s", ErrTypeMismatch, t)
	}
	f, err := s.TempFile()
	if err != nil {
		return Item{}, err
	}
	defer removeTemp(f)
	h := sha256.New()
	w := io.MultiWriter(f, h)
	if _, err := w.Write(head); err != nil {
		return Item{}, diskErr(err)
	}
	if n, err := io.CopyN(w, body, size-int64(len(head))); err != nil {
		var re readErr
		if errors.As(err, &re) || err == io.EOF {
			return Item{}, shortBody(err)
		}
		return Item{}, fmt.Errorf("after %d bytes: %w", int64(len(head))+n, diskErr(err))
	}
	now := s.now()
	it := Item{ID: newID(), SHA256: hex.EncodeToString(h.Sum(nil)), Size: size, Type: t, Filename: name,
		State: StateReady, Peer: peer, CreatedAt: time.Unix(0, now.UnixNano())}
	inspect(f, &it)
	row := func(state string) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO media (id, sha256, size, type, filename, state, peer, width, height, seconds, thumbnail, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)`,
				it.ID, it.SHA256, it.Size, it.Type, it.Filename, state, peer, it.Width, it.Height, it.Seconds, nullBytes(it.Thumbnail), now.UnixNano())
			return err
		}
	}
	if s.db.Dialect == store.Postgres {
		err = s.keepChunks(ctx, &it, f, row(stateUploading), stateUploading, nil)
	} else {
		err = s.keepFile(ctx, &it, f, row(StateReady))
	}
	if err != nil {
		return Item{}, err
	}
	return it, nil
}

// diskErr is a write error of the store's files: ErrNoSpace when the disk
// is full.
func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return fmt.Errorf("media: write: %w", err)
}

func shortBody(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrShortBody
	}
	return fmt.Errorf("%w: %w", ErrShortBody, err)
}

// removeTemp closes and removes f (harmless once keep has moved it).
func removeTemp(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// stateUploading is, on PostgreSQL, an upload whose row and chunks are
// written but not yet made ready under the quota: invisible (Get answers
// ErrNotFound), never evicted or pruned, and swept by New once older than
// staleUpload (a crash between the two transactions).
const stateUploading = "uploading"

// staleUpload is when New removes an uploading row: longer than any
// upload's last step takes.
const staleUpload = time.Hour

// keepFile (SQLite) makes the bytes of it (the whole of f) durable as its
// file and then commits fn with them, after making room under the quota,
// in one write transaction: f is fsynced, renamed to the item's file, and
// the directory fsynced, before the transaction; if it does not commit,
// the file is removed. Files of evicted items are removed after the
// commit.
func (s *Store) keepFile(ctx context.Context, it *Item, f *os.File, fn func(context.Context, *sql.Tx) error) error {
	if err := f.Sync(); err != nil {
		return diskErr(err)
	}
	path := s.path(it.ID)
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		os.Remove(path)
		return err
	}
	var evicted []string
	err := s.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if evicted, err = s.makeRoom(ctx, tx, it.Size); err != nil {
			return err
		}
		return fn(ctx, tx)
	})
	if err != nil {
		os.Remove(path)
		return wrapDB(err)
	}
	s.removeFiles(evicted)
	return nil
}

// keepChunks (PostgreSQL) writes f as the media_chunks rows of it, in one
// transaction with stage (the upload's row, in state from), and then, in a
// write transaction, makes room under the quota and marks the item ready
// (readyTx from state from, with also). The chunks go in outside the write
// lock, which every write of the appliance waits for: a 100 MB item over a
// slow link to the database would otherwise stop sends and inbound events
// for as long; at most stagers of them are written at once. On any error
// what was staged is removed.
func (s *Store) keepChunks(ctx context.Context, it *Item, f *os.File, stage func(context.Context, *sql.Tx) error, from string, also func(context.Context, *sql.Tx, Item) error) error {
	err := s.stageChunks(ctx, it.ID, f, stage)
	if err == nil {
		err = s.db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := s.makeRoom(ctx, tx, it.Size); err != nil {
				return err
			}
			return readyTx(ctx, tx, it, from, s.now(), also)
		})
	}
	if err != nil {
		cctx := context.WithoutCancel(ctx)
		if from == stateUploading {
			s.db.ExecContext(cctx, `DELETE FROM media WHERE id = $1 AND state = $2`, it.ID, stateUploading)
		} else {
			s.db.ExecContext(cctx, `DELETE FROM media_chunks WHERE media_id = $1 AND EXISTS (SELECT 1 FROM media WHERE id = $1 AND state = $2)`, it.ID, from)
		}
		return wrapDB(err)
	}
	return nil
}

// stagers bounds the chunk writes of a process at once (each holds a
// pooled connection and a chunk's buffers).
const stagers = 2

func (s *Store) stageChunks(ctx context.Context, id string, f *os.File, stage func(context.Context, *sql.Tx) error) error {
	select {
	case s.stage <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.stage }()
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := stage(ctx, tx); err != nil {
		return err
	}
	// A crash between staging and commit may have left chunks of a
	// pending item: they are written anew.
	if _, err := tx.ExecContext(ctx, `DELETE FROM media_chunks WHERE media_id = $1`, id); err != nil {
		return err
	}
	if err := writeChunks(ctx, tx, id, f); err != nil {
		return err
	}
	return tx.Commit()
}

// readyTx marks the item it, in state from, ready with what the store
// learned of its bytes, and runs also(ctx, tx, *it) (nil: nothing) in the
// same transaction. ErrNotFound when it is no longer in state from.
func readyTx(ctx context.Context, tx *sql.Tx, it *Item, from string, now time.Time, also func(context.Context, *sql.Tx, Item) error) error {
	res, err := tx.ExecContext(ctx, `UPDATE media SET state = 'ready', sha256 = $3, size = $4, width = $5, height = $6, seconds = $7,
		thumbnail = $8, source = NULL, updated_at = $9 WHERE id = $1 AND state = $2`,
		it.ID, from, it.SHA256, it.Size, it.Width, it.Height, it.Seconds, nullBytes(it.Thumbnail), now.UnixNano())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no %s item %s", ErrNotFound, from, it.ID)
	}
	if also != nil {
		return also(ctx, tx, *it)
	}
	return nil
}

func wrapDB(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range []error{ErrQuota, ErrNotFound, ErrFailed, ErrPending} {
		if errors.Is(err, e) {
			return err
		}
	}
	return fmt.Errorf("media: %w", err)
}

func (s *Store) removeFiles(ids []string) {
	if s.db.Dialect == store.Postgres {
		return
	}
	for _, id := range ids {
		os.Remove(s.path(id))
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("media: fsync %s: %w", dir, err)
	}
	return nil
}

// evictable is the condition on media m of an item that may be evicted
// or pruned: it has its bytes or failed, and no queued message names it.
const notQueued = `NOT EXISTS (SELECT 1 FROM outbox o WHERE o.media_id = m.id AND o.status = 'queued')`

// makeRoom evicts, in tx, the oldest ready items no queued message
// references until need more bytes fit under the quota, and returns their
// ids; ErrQuota when even evicting all of them is not enough (tx then
// rolls back, evicting nothing). Ready items count; pending ones hold no
// bytes yet.
func (s *Store) makeRoom(ctx context.Context, tx *sql.Tx, need int64) ([]string, error) {
	if s.max < 0 {
		return nil, nil
	}
	if need > s.max {
		return nil, fmt.Errorf("%w: %d bytes, the quota is %d", ErrQuota, need, s.max)
	}
	var used int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM media WHERE state = 'ready'`).Scan(&used); err != nil {
		return nil, err
	}
	over := used + need - s.max
	if over <= 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, size FROM media m WHERE state = 'ready' AND `+notQueued+` ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	var ids []string
	var freed int64
	for freed < over && rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return nil, err
		}
		ids, freed = append(ids, id), freed+n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if freed < over {
		return nil, fmt.Errorf("%w: %d bytes do not fit, %d of the quota %d are held by media queued messages need", ErrQuota, need, used-freed, s.max)
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `DELETE FROM media WHERE id = $1`, id); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func writeChunks(ctx context.Context, tx *sql.Tx, id string, f *os.File) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	buf := make([]byte, ChunkSize)
	for n := 0; ; n++ {
		k, err := io.ReadFull(f, buf)
		if k > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO media_chunks (media_id, n, data) VALUES ($1, $2, $3)`, id, n, buf[:k]); err != nil {
				return err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

const itemColumns = `id, sha256, size, type, filename, state, error, session, peer, width, height, seconds, thumbnail, created_at`

type scanner interface{ Scan(...any) error }

func scanItem(r scanner, extra ...any) (Item, error) {
	var it Item
	var at int64
	dst := append([]any{&it.ID, &it.SHA256, &it.Size, &it.Type, &it.Filename, &it.State, &it.Error, &it.Session, &it.Peer,
		&it.Width, &it.Height, &it.Seconds, &it.Thumbnail, &at}, extra...)
	if err := r.Scan(dst...); err != nil {
		return Item{}, err
	}
	it.CreatedAt = time.Unix(0, at)
	if len(it.Thumbnail) == 0 {
		it.Thumbnail = nil
	}
	return it, nil
}

// Get is the item id in whatever state (ErrNotFound when there is none).
func (s *Store) Get(ctx context.Context, id string) (Item, error) {
	return s.get(ctx, s.db, id)
}

func (s *Store) get(ctx context.Context, q store.Querier, id string) (Item, error) {
	if !validID(id) {
		return Item{}, ErrNotFound
	}
	it, err := scanItem(q.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM media WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, ErrNotFound
	}
	if err != nil {
		return Item{}, fmt.Errorf("media: get: %w", err)
	}
	if it.State == stateUploading {
		return Item{}, ErrNotFound
	}
	return it, nil
}

// Open streams a ready item: a seekable reader of its bytes (for Range),
// which the caller closes. ErrPending, ErrFailed or ErrNotFound otherwise
// (ErrNotFound, too, for a ready item whose bytes are gone: a state moved
// from SQLite to PostgreSQL by `migrate` leaves its media files behind).
func (s *Store) Open(ctx context.Context, id string) (Item, io.ReadSeekCloser, error) {
	it, err := s.Get(ctx, id)
	if err != nil {
		return Item{}, nil, err
	}
	switch it.State {
	case StatePending:
		return it, nil, ErrPending
	case StateFailed:
		return it, nil, fmt.Errorf("%w: %s", ErrFailed, it.Error)
	}
	if s.db.Dialect != store.Postgres {
		f, err := os.Open(s.path(id))
		if err == nil {
			return it, f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return Item{}, nil, fmt.Errorf("media: %w", err)
		}
		// A state moved here from PostgreSQL keeps its bytes in chunks.
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM media_chunks WHERE media_id = $1`, id).Scan(&n); err != nil {
		return Item{}, nil, fmt.Errorf("media: open: %w", err)
	}
	if int64(n) != (it.Size+ChunkSize-1)/ChunkSize {
		return Item{}, nil, fmt.Errorf("%w: the bytes of %s are gone", ErrNotFound, id)
	}
	return it, &chunkReader{ctx: ctx, db: s.db, id: id, size: it.Size, cur: -1}, nil
}

// chunkReader reads an item's media_chunks rows, one at a time.
type chunkReader struct {
	ctx  context.Context
	db   *store.DB
	id   string
	size int64
	off  int64
	cur  int64 // the chunk in buf, -1 for none
	buf  []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.off >= c.size {
		return 0, io.EOF
	}
	n := c.off / ChunkSize
	if n != c.cur {
		if err := c.load(n); err != nil {
			c.cur = -1
			return 0, fmt.Errorf("media: read chunk %d of %s: %w", n, c.id, err)
		}
		c.cur = n
	}
	i := int(c.off - n*ChunkSize)
	if i >= len(c.buf) {
		return 0, fmt.Errorf("media: chunk %d of %s is short", n, c.id)
	}
	k := copy(p, c.buf[i:])
	c.off += int64(k)
	return k, nil
}

// load reads chunk n into buf, reusing it: sql.RawBytes spares the copy
// database/sql makes for a []byte destination (1 MiB of garbage a chunk).
func (c *chunkReader) load(n int64) error {
	rows, err := c.db.QueryContext(c.ctx, `SELECT data FROM media_chunks WHERE media_id = $1 AND n = $2`, c.id, n)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	var raw sql.RawBytes
	if err := rows.Scan(&raw); err != nil {
		return err
	}
	c.buf = append(c.buf[:0], raw...)
	return rows.Close()
}

func (c *chunkReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.off
	case io.SeekEnd:
		offset += c.size
	default:
		return 0, errors.New("media: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("media: negative offset")
	}
	c.off = offset
	return offset, nil
}

func (c *chunkReader) Close() error { c.buf = nil; return nil }

// hashFile is the SHA-256 and size of f's bytes, read from the start.
func hashFile(f *os.File) (string, int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	var h hash.Hash = sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
