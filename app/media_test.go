package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"waappliance/app"
	"waappliance/internal/pgtest"
	"waappliance/internal/wgclient"
	"waappliance/media"
	"waappliance/peers"
)

// clock is a settable clock for the appliance.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// pngBytes is n bytes that start like a PNG: enough for the signature
// check (not a decodable image).
func pngBytes(n int) []byte {
	b := bytes.Repeat([]byte{7}, n)
	copy(b, "\x89PNG\r\n\x1a\n")
	return b
}

// realPNG is a decodable w×h PNG.
func realPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 99, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// mediaJSON is the MediaItem an upload answers.
type mediaJSON struct {
	ID, SHA256, Type, Filename, State, Error, Session string
	Size                                              int64
	Width, Height, Seconds                            int
}

// upload POSTs body as typ to /v1/media (query: "" or "?filename=…").
func upload(t testing.TB, cl *wgclient.Client, typ, query string, body []byte, h map[string]string) *wgclient.Response {
	t.Helper()
	hh := map[string]string{"Content-Type": typ}
	for k, v := range h {
		hh[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cl.DoWithHeader(ctx, "POST", "/v1/media"+query, body, hh)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return r
}

func mustUpload(t testing.TB, cl *wgclient.Client, typ, query string, body []byte) mediaJSON {
	t.Helper()
	r := upload(t, cl, typ, query, body, nil)
	var m mediaJSON
	if r.Status != http.StatusCreated || r.JSON(&m) != nil {
		t.Fatalf("upload %s: %d %s", typ, r.Status, r.Body)
	}
	return m
}

// errCode is the code of an error answer.
func errCode(r *wgclient.Response) string {
	var e struct{ Error struct{ Code string } }
	if r.JSON(&e) != nil {
		return "(not JSON)"
	}
	return e.Error.Code
}

// rawHTTP sends a request written by hand through the tunnel (what no
// well-behaved client sends: a length it does not keep, chunked
// uploads), then closes the connection after writing when hangUp, else
// reads the answer.
func rawHTTP(t testing.TB, ta *testAppliance, cl *wgclient.Client, head string, body []byte, hangUp bool) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cl.DialContext(ctx, "tcp", ta.TunnelAddr().String()+":80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n"); err != nil {
		t.Fatal(err)
	}
	c.Write(body)
	if hangUp {
		return 0, ""
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mediaLeft is what the appliance holds of media: rows, chunks, and the
// files in its media dir.
func mediaLeft(t testing.TB, ta *testAppliance) (rows, chunks int, files []string) {
	t.Helper()
	ctx := context.Background()
	ta.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM media`).Scan(&rows)
	ta.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM media_chunks`).Scan(&chunks)
	ents, _ := os.ReadDir(filepath.Join(ta.dir, app.MediaDir))
	for _, e := range ents {
		files = append(files, e.Name())
	}
	return rows, chunks, files
}

func (ta *testAppliance) mediaPeer(t testing.TB, name string, sessions []string, scopes ...peers.Scope) *wgclient.Client {
	t.Helper()
	c, err := ta.Peers().Add(context.Background(), peers.AddOptions{Name: name, Scopes: scopes, Sessions: sessions, Rate: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ta.Sync()
	return ta.client(t, c)
}

// TestMediaWired: serve opens the media store in the state dir's media/
// (0700), and the event retention prunes media with the events.
func TestMediaWired(t *testing.T) {
	c := &clock{t: time.Now()}
	ta := serveWith(t, initState(t, peers.Server{Endpoint: "127.0.0.1:51820"}), func(o *app.Options) { o.Now = c.now; o.Retention = time.Hour })
	st := ta.Media()
	if st == nil {
		t.Fatal("no media store after Start")
	}
	dir := filepath.Join(ta.dir, app.MediaDir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("media dir: %v %v", fi, err)
	}
	ctx := context.Background()
	it, err := st.Put(ctx, "alice", "image/png", "", 100, bytes.NewReader(pngBytes(100)))
	if err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Hour)
	if _, err := ta.Events().Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, it.ID); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("media outlived the event retention: %v", err)
	}
}

// TestMediaUploadAndGet: what a peer uploads through the tunnel it gets
// back byte for byte (by SHA-256), also in ranges; documents come as
// attachments with their (escaped) file name; only the uploader and admins
// see an upload, only peers allowed its session see inbound media.
func TestMediaUploadAndGet(t *testing.T) {
	ta := startAppliance(t)
	alice := ta.mediaPeer(t, "alice", nil, peers.ScopeSend, peers.ScopeRead)
	bob := ta.mediaPeer(t, "bob", nil, peers.ScopeSend, peers.ScopeRead)
	admin := ta.mediaPeer(t, "root", nil, peers.ScopeAdmin)
	shop := ta.mediaPeer(t, "shopper", []string{"shop"}, peers.ScopeRead)
	other := ta.mediaPeer(t, "other", []string{"other"}, peers.ScopeRead)
	readOnly := ta.mediaPeer(t, "reader", nil, peers.ScopeRead)

	img := realPNG(t, 300, 200)
	m := mustUpload(t, alice, "image/png", "?filename=cat.png", img)
	if m.SHA256 != hexSum(img) || m.Size != int64(len(img)) || m.Type != "image/png" || m.State != "ready" || m.Filename != "cat.png" {
		t.Fatalf("upload answered %+v", m)
	}
	r := do(t, alice, "GET", "/v1/media/"+m.ID, nil)
	if r.Status != 200 || hexSum(r.Body) != m.SHA256 || r.Header.Get("Content-Type") != "image/png" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET: %d %s, %d bytes", r.Status, r.Header, len(r.Body))
	}
	if d := r.Header.Get("Content-Disposition"); d != `inline; filename=cat.png` {
		t.Fatalf("image Content-Disposition %q", d)
	}
	ctx := context.Background()
	rr, err := alice.DoWithHeader(ctx, "GET", "/v1/media/"+m.ID, nil, map[string]string{"Range": "bytes=100-199"})
	if err != nil || rr.Status != http.StatusPartialContent || !bytes.Equal(rr.Body, img[100:200]) ||
		rr.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(img)) {
		t.Fatalf("Range: %v %d %q", err, rr.Status, rr.Header.Get("Content-Range"))
	}
	// The ETag is the SHA-256: a client holding it gets 304.
	if rr, _ := alice.DoWithHeader(ctx, "GET", "/v1/media/"+m.ID, nil, map[string]string{"If-None-Match": `"` + m.SHA256 + `"`}); rr.Status != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", rr.Status)
	}
	var info mediaJSON
	if r := do(t, alice, "GET", "/v1/media/"+m.ID+"/info", nil); r.Status != 200 || r.JSON(&info) != nil || info.SHA256 != m.SHA256 || info.Width != 300 || info.Height != 200 {
		t.Fatalf("info: %d %s", r.Status, r.Body)
	}
	if r := do(t, alice, "GET", "/v1/media/"+m.ID+"/thumbnail", nil); r.Status != 200 || r.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("thumbnail: %d %s", r.Status, r.Header)
	} else if th, err := jpeg.DecodeConfig(bytes.NewReader(r.Body)); err != nil || th.Width != 96 || th.Height != 64 {
		t.Fatalf("thumbnail: %+v %v", th, err)
	}
	if r := do(t, admin, "GET", "/v1/media/"+m.ID, nil); r.Status != 200 || hexSum(r.Body) != m.SHA256 {
		t.Fatalf("admin GET: %d", r.Status)
	}
	// Another peer's upload: 404, the same answer as for no such item.
	for _, path := range []string{"/v1/media/" + m.ID, "/v1/media/" + m.ID + "/info", "/v1/media/" + strings.Repeat("0", 32), "/v1/media/..%2f..%2fetc"} {
		if r := do(t, bob, "GET", path, nil); r.Status != 404 || errCode(r) != "not_found" {
			t.Fatalf("bob GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	// A client's alias for the type: taken, stored under the type's name.
	var jb bytes.Buffer
	jpeg.Encode(&jb, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	if j := mustUpload(t, alice, "image/jpg", "", jb.Bytes()); j.Type != "image/jpeg" || j.Width != 8 {
		t.Fatalf("image/jpg upload: %+v", j)
	}
	// A peer without the send scope uploads nothing.
	if r := upload(t, readOnly, "image/png", "", img, nil); r.Status != 403 {
		t.Fatalf("upload without send: %d", r.Status)
	}

	// A document: an attachment, its file name quoted (and RFC 2231 for
	// non-ASCII), from Content-Disposition.
	pdf := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("x"), 5000)...)
	name := `Rechnung "März"; 1.pdf`
	r = upload(t, alice, "application/pdf", "", pdf, map[string]string{"Content-Disposition": mime.FormatMediaType("attachment", map[string]string{"filename": name})})
	var doc mediaJSON
	if r.Status != 201 || r.JSON(&doc) != nil || doc.Filename != name {
		t.Fatalf("document upload: %d %s", r.Status, r.Body)
	}
	if r := do(t, alice, "GET", "/v1/media/"+doc.ID+"/thumbnail", nil); r.Status != 404 || errCode(r) != "no_thumbnail" {
		t.Fatalf("thumbnail of a document: %d %s", r.Status, r.Body)
	}
	r = do(t, alice, "GET", "/v1/media/"+doc.ID, nil)
	disp, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition"))
	if r.Status != 200 || !bytes.Equal(r.Body, pdf) || err != nil || disp != "attachment" || params["filename"] != name {
		t.Fatalf("document GET: %d %q (%v)", r.Status, r.Header.Get("Content-Disposition"), err)
	}
	// ?filename= with a space and a non-ASCII letter.
	q := "?filename=" + url.QueryEscape("Straße 1.pdf")
	if d := mustUpload(t, alice, "application/pdf", q, pdf); d.Filename != "Straße 1.pdf" {
		t.Fatalf("?filename= gave %q", d.Filename)
	}

	// Inbound media of session shop: peers allowed shop see it, others not.
	st := ta.Media()
	reserve := func(typ string) media.Item {
		var it media.Item
		err := ta.DB().WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			it, err = st.ReserveTx(ctx, tx, media.Reservation{Session: "shop", Type: typ, Size: int64(len(pdf))})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	in := reserve("application/pdf")
	for _, cl := range []*wgclient.Client{shop, admin} {
		if r := do(t, cl, "GET", "/v1/media/"+in.ID, nil); r.Status != 409 || errCode(r) != "media_pending" {
			t.Fatalf("pending: %d %s", r.Status, r.Body)
		}
	}
	f, _ := st.TempFile()
	f.Write(pdf)
	if _, err := st.Complete(ctx, in.ID, f, nil); err != nil {
		t.Fatal(err)
	}
	if r := do(t, shop, "GET", "/v1/media/"+in.ID, nil); r.Status != 200 || !bytes.Equal(r.Body, pdf) {
		t.Fatalf("inbound GET: %d", r.Status)
	}
	if r := do(t, other, "GET", "/v1/media/"+in.ID, nil); r.Status != 404 || errCode(r) != "not_found" {
		t.Fatalf("inbound media of another session: %d", r.Status)
	}
	// bob has no allow-list: every session is his.
	if r := do(t, bob, "GET", "/v1/media/"+in.ID, nil); r.Status != 200 {
		t.Fatalf("inbound media for a peer of every session: %d", r.Status)
	}
	failed := reserve("image/jpeg")
	if err := st.Fail(ctx, failed.ID, "gone at WhatsApp", nil); err != nil {
		t.Fatal(err)
	}
	if r := do(t, shop, "GET", "/v1/media/"+failed.ID, nil); r.Status != 410 || errCode(r) != "media_failed" || !strings.Contains(string(r.Body), "gone at WhatsApp") {
		t.Fatalf("failed: %d %s", r.Status, r.Body)
	}
}

// TestMediaUploadRefusals: every bad upload gets its 4xx and leaves
// nothing behind: no row, no chunk, no file (temporary or not).
func TestMediaUploadRefusals(t *testing.T) {
	ta := serveWith(t, initState(t, peers.Server{Endpoint: "127.0.0.1:51820"}), func(o *app.Options) { o.MediaMaxBytes = 20 << 20 })
	alice := ta.mediaPeer(t, "alice", nil, peers.ScopeSend, peers.ScopeRead)
	img := realPNG(t, 20, 20)
	host := "Host: " + ta.TunnelAddr().String()
	for _, c := range []struct {
		name, typ, query string
		body             []byte
		h                map[string]string
		status           int
		code             string
	}{
		{"png declared jpeg", "image/jpeg", "", img, nil, 415, "media_type_mismatch"},
		{"html declared png", "image/png", "", []byte("<html><script>alert(1)</script></html>"), nil, 415, "media_type_mismatch"},
		{"binary declared text", "text/plain", "", []byte("\x00\x01\x02\x03"), nil, 415, "media_type_mismatch"},
		{"unknown type", "application/x-msdownload", "", img, nil, 415, "unsupported_media_type"},
		{"svg", "image/svg+xml", "", []byte("<svg/>"), nil, 415, "unsupported_media_type"},
		{"html", "text/html", "", []byte("<html></html>"), nil, 415, "unsupported_media_type"},
		{"newline in filename", "image/png", "?filename=a%0Ab.png", img, nil, 400, "invalid_argument"},
		{"path in filename", "image/png", "?filename=..%2F..%2Fetc%2Fpasswd", img, nil, 400, "invalid_argument"},
		{"rtl override in filename", "image/png", "?filename=" + url.QueryEscape("x\u202egnp.exe"), img, nil, 400, "invalid_argument"},
		{"bad Content-Disposition", "image/png", "", img, map[string]string{"Content-Disposition": `attachment; filename="a`}, 400, "invalid_argument"},
		{"empty", "image/png", "", []byte{}, nil, 400, "invalid_argument"},
	} {
		r := upload(t, alice, c.typ, c.query, c.body, c.h)
		if r.Status != c.status || errCode(r) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.Status, r.Body, c.status, c.code)
		}
	}
	// Over the kind's limit, the route's limit or the quota, and no length:
	// refused from the headers, before a byte of the body.
	for _, c := range []struct {
		name, head string
		status     int
		code       string
	}{
		{"image over 16 MiB", fmt.Sprintf("POST /v1/media HTTP/1.1\n%s\nContent-Type: image/png\nContent-Length: %d\n", host, 16<<20+1), 413, "too_large"},
		{"sticker-sized webp is an image", fmt.Sprintf("POST /v1/media HTTP/1.1\n%s\nContent-Type: video/mp4\nContent-Length: %d\n", host, 64<<20+1), 413, "too_large"},
		{"over the route's limit", fmt.Sprintf("POST /v1/media HTTP/1.1\n%s\nContent-Type: application/pdf\nContent-Length: %d\n", host, int64(3)<<30), 413, "too_large"},
		{"over the quota", fmt.Sprintf("POST /v1/media HTTP/1.1\n%s\nContent-Type: application/pdf\nContent-Length: %d\n", host, 21<<20), 507, "media_quota_exceeded"},
		{"over the limit, expecting 100-continue", fmt.Sprintf("POST /v1/media HTTP/1.1\n%s\nContent-Type: image/png\nExpect: 100-continue\nContent-Length: %d\n", host, 16<<20+1), 413, "too_large"},
		{"chunked", fmt.Sprintf("POST /v1/media HTTP/1.1\n%s\nContent-Type: image/png\nTransfer-Encoding: chunked\n", host), 411, "length_required"},
		{"no length", fmt.Sprintf("POST /v1/media HTTP/1.1\n%s\nContent-Type: image/png\n", host), 411, "length_required"},
	} {
		status, body := rawHTTP(t, ta, alice, c.head, nil, false)
		if status != c.status || !strings.Contains(body, `"`+c.code+`"`) {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, body, c.status, c.code)
		}
	}
	// A client that hangs up half-way.
	big := append([]byte{}, img...)
	big = append(big, bytes.Repeat([]byte{1}, 1<<20)...)
	rawHTTP(t, ta, alice, fmt.Sprintf("POST /v1/media HTTP/1.1\n%s\nContent-Type: image/png\nContent-Length: %d\n", host, 4<<20), big, true)
	eventually(t, "the cut upload leaves nothing", func() bool {
		rows, chunks, files := mediaLeft(t, ta)
		return rows == 0 && chunks == 0 && len(files) == 0
	})
	if rows, chunks, files := mediaLeft(t, ta); rows != 0 || chunks != 0 || len(files) != 0 {
		t.Fatalf("left: %d rows, %d chunks, files %v", rows, chunks, files)
	}
	// And a good one still works.
	mustUpload(t, alice, "image/png", "", img)
}

// queueMedia inserts a queued outbox row naming media id, as a send of a
// media kind writes it.
func queueMedia(t testing.TB, ta *testAppliance, id string) {
	t.Helper()
	ctx := context.Background()
	db := ta.DB()
	if _, err := db.ExecContext(ctx, `INSERT INTO sessions (name, state, created_at, updated_at) VALUES ('mq', 'new', 0, 0) ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO outbox (id, session, peer, to_jid, text, status, next_attempt_at, created_at, updated_at, media_id)
		VALUES ($1, 'mq', 'alice', 'x@s.whatsapp.net', '', 'queued', 0, 0, 0, $2)`, "q"+id, id); err != nil {
		t.Fatal(err)
	}
}

// TestMediaQuota: under the quota the oldest upload goes first, never one
// a queued message needs; when nothing can go, 507.
func TestMediaQuota(t *testing.T) {
	c := &clock{t: time.Now()}
	ta := serveWith(t, initState(t, peers.Server{Endpoint: "127.0.0.1:51820"}), func(o *app.Options) { o.MediaMaxBytes = 3 << 20; o.Now = c.now })
	alice := ta.mediaPeer(t, "alice", nil, peers.ScopeSend, peers.ScopeRead)
	put := func(i int) mediaJSON {
		c.add(time.Second)
		b := pngBytes(1 << 20)
		b[1000] = byte(i)
		return mustUpload(t, alice, "image/png", "", b)
	}
	a, b, cc := put(1), put(2), put(3)
	queueMedia(t, ta, a.ID)
	d := put(4) // evicts b, not a
	status := func(m mediaJSON) int { return do(t, alice, "GET", "/v1/media/"+m.ID+"/info", nil).Status }
	if status(a) != 200 || status(b) != 404 || status(cc) != 200 || status(d) != 200 {
		t.Fatalf("after eviction: a %d b %d c %d d %d", status(a), status(b), status(cc), status(d))
	}
	queueMedia(t, ta, cc.ID)
	queueMedia(t, ta, d.ID)
	r := upload(t, alice, "image/png", "", pngBytes(1<<20), nil)
	if r.Status != 507 || errCode(r) != "media_quota_exceeded" {
		t.Fatalf("full quota: %d %s", r.Status, r.Body)
	}
	if rows, _, files := mediaLeft(t, ta); rows != 3 || (testEngineIsSQLite() && len(files) != 3) {
		t.Fatalf("after the refusal: %d rows, files %v", rows, files)
	}
}

func testEngineIsSQLite() bool { return testEngine() == "sqlite" }

// TestMigrateCarriesMedia: `migrate --to postgres` turns a SQLite state's
// media files into chunk rows (and removes the files), `--to sqlite`
// brings the chunks back, and the bytes stay readable all the way.
func TestMigrateCarriesMedia(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip(pgtest.Env + " is not set (scripts/pg runs a server)")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	if err := app.Initialize(ctx, dir, peers.Server{Endpoint: "127.0.0.1:51820"}, ""); err != nil {
		t.Fatal(err)
	}
	data := append(pngBytes(3<<20), "tail"...)
	ta := serveState(t, dir)
	it, err := ta.Media().Put(ctx, "alice", "image/png", "x.png", int64(len(data)), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ta.Close()
	check := func(where string) {
		t.Helper()
		ta := serveState(t, dir)
		defer ta.Close()
		_, r, err := ta.Media().Open(ctx, it.ID)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if hexSum(got) != it.SHA256 {
			t.Fatalf("%s: %d bytes, not the ones stored", where, len(got))
		}
	}
	migrateCLI(t, dir, pgtest.Fresh(t))
	if _, err := os.Stat(filepath.Join(dir, app.MediaDir, it.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the media file stayed after the move to PostgreSQL: %v", err)
	}
	check("on PostgreSQL")
	migrateCLI(t, dir, "sqlite")
	check("back on SQLite")
}

// TestMediaUploadExpectContinue: curl sends Expect: 100-continue before a
// body over 1 MB; the upload gets its 100 Continue when the store starts
// reading, and its 201 after the body.
func TestMediaUploadExpectContinue(t *testing.T) {
	ta := startAppliance(t)
	alice := ta.mediaPeer(t, "alice", nil, peers.ScopeSend, peers.ScopeRead)
	body := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("z"), 2<<20)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := alice.DialContext(ctx, "tcp", ta.TunnelAddr().String()+":80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "POST /v1/media?filename=a.pdf HTTP/1.1\r\nHost: %s\r\nContent-Type: application/pdf\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", ta.TunnelAddr(), len(body))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("before the body: %q %v", line, err)
	}
	br.ReadString('\n') // the blank line after 100 Continue
	if _, err := c.Write(body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m mediaJSON
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 201 || json.Unmarshal(b, &m) != nil || m.SHA256 != hexSum(body) {
		t.Fatalf("after the body: %d %s", resp.StatusCode, b)
	}
}

// TestMediaUploadTimeout: a body slower than its deadline (bodyTimeout +
// 1 s per MiB declared) is cut with 408 and leaves nothing.
func TestMediaUploadTimeout(t *testing.T) {
	ta := serveWith(t, initState(t, peers.Server{Endpoint: "127.0.0.1:51820"}), func(o *app.Options) { o.Limits.BodyTimeout = 300 * time.Millisecond })
	alice := ta.mediaPeer(t, "alice", nil, peers.ScopeSend)
	head := fmt.Sprintf("POST /v1/media HTTP/1.1\nHost: %s\nContent-Type: image/png\nContent-Length: 5000\n", ta.TunnelAddr())
	status, body := rawHTTP(t, ta, alice, head, pngBytes(1000), false) // then nothing more
	if status != 408 || !strings.Contains(body, `"request_timeout"`) {
		t.Fatalf("a stalled upload: %d %s", status, body)
	}
	if rows, chunks, files := mediaLeft(t, ta); rows != 0 || chunks != 0 || len(files) != 0 {
		t.Fatalf("left: %d rows, %d chunks, files %v", rows, chunks, files)
	}
}

// TestRemovedPeersUploadsAreNobodys: uploads belong to their peer by name;
// a peer added later under a removed peer's name does not get them (404, as
// for any other peer's), while an admin still does.
func TestRemovedPeersUploadsAreNobodys(t *testing.T) {
	ta := startAppliance(t)
	admin := ta.mediaPeer(t, "root", nil, peers.ScopeAdmin)
	alice := ta.mediaPeer(t, "alice", nil, peers.ScopeSend, peers.ScopeRead)
	img := realPNG(t, 40, 30)
	m := mustUpload(t, alice, "image/png", "", img)
	if err := ta.Peers().Remove(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	ta.Sync()
	again := ta.mediaPeer(t, "alice", nil, peers.ScopeSend, peers.ScopeRead)
	for _, path := range []string{"/v1/media/" + m.ID, "/v1/media/" + m.ID + "/info"} {
		if r := do(t, again, "GET", path, nil); r.Status != 404 || errCode(r) != "not_found" {
			t.Fatalf("the new alice GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	if r := do(t, admin, "GET", "/v1/media/"+m.ID, nil); r.Status != 200 || hexSum(r.Body) != m.SHA256 {
		t.Fatalf("admin GET: %d", r.Status)
	}
	// The new alice's own uploads are hers as usual.
	if n := mustUpload(t, again, "image/png", "", img); do(t, again, "GET", "/v1/media/"+n.ID, nil).Status != 200 {
		t.Fatal("the new alice cannot read her own upload")
	}
}
