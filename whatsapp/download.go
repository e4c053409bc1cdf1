package whatsapp

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	waEvents "go.mau.fi/whatsmeow/types/events"

	"waappliance/events"
	"waappliance/internal/backoff"
	"waappliance/media"
)

// Downloading received media. The media of a message.received is reserved
// (pending) in the transaction that appends the event; after the commit —
// and after the ack, which never waits — the session's downloader fetches
// it with whatsmeow into a temp file of the media store, which Complete
// makes the item's bytes in one transaction with the media.ready event.
//
// Bounds: at most DownloadsPerSession downloads of a session and
// DownloadsTotal of the engine run at once, each within its deadline:
// DownloadTimeout plus a second per DownloadMinRate bytes it announced (2
// min + 400 s for 100 MB).
// A transient failure (network, timeout, a 5xx) is retried on the
// engine's backoff up to DownloadAttempts times; when WhatsApp's media
// server answers 403/404/410 (the link expired) the session asks the phone
// to upload the media again (a media retry receipt), waits up to
// MediaRetryWait for its answer (events.MediaRetry: a new direct path),
// and downloads again; only then does it give up with media.failed. A
// hash or MAC mismatch fails at once. Pending items survive restarts: a
// session's are taken up again when it connects (an item taken up
// maxTakeUps times without an outcome — a download that keeps crashing the
// process — fails). A deleted session's pending items fail.

// Download limits; variables so tests can shorten them.
var (
	DownloadsPerSession = 2
	DownloadsTotal      = 4
	DownloadTimeout     = 2 * time.Minute
	DownloadMinRate     = int64(256 << 10) // bytes/s a download is given at least
	DownloadAttempts    = 5
	MediaRetryWait      = 2 * time.Minute
	// DownloadsHeld bounds the items a session's downloader holds in
	// memory (queued, running, waiting for the phone): a flood of media
	// messages leaves the rest pending in the store, taken up when the
	// queue drains.
	DownloadsHeld   = 500
	downloadBackoff = backoff.Policy{Min: 2 * time.Second, Max: 2 * time.Minute}
)

const (
	// maxTakeUps bounds how often an item is taken up across restarts.
	maxTakeUps = 5
	// maxMediaRetries is how often the phone is asked to upload one item again.
	maxMediaRetries = 2
)

// MediaEvent is the data of media.ready and media.failed: the media item
// and the message it came with. media.ready carries what the store learned
// of the bytes (their size and SHA-256; width and height of an image,
// seconds of audio or video, where it could tell).
type MediaEvent struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Message  Target `json:"message"`
	Type     string `json:"type,omitempty"`
	Size     int64  `json:"size,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Filename string `json:"filename,omitempty"`
	Width    int    `json:"width,omitempty"`
	Height   int    `json:"height,omitempty"`
	Seconds  int    `json:"seconds,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// pendingItem is one item the downloader holds in memory.
type pendingItem struct {
	id       string
	src      mediaSource
	failures int         // transient failures in this process
	timer    *time.Timer // a retry after backoff, or the wait for the phone
}

// downloads is the engine's downloader: a queue per session.
type downloads struct {
	once  sync.Once
	total chan struct{}

	mu       sync.Mutex
	sessions map[string]*sessionDownloads
}

type sessionDownloads struct {
	queue   []*pendingItem
	known   map[string]*pendingItem // every item held: queued, running, waiting
	waiting map[string]*pendingItem // by message id: the phone was asked to upload it again
	running int
	loaded  bool // taken up from the store since start
	full    bool // the last take-up was a full batch: more may be pending
	dropped bool
}

func (e *Engine) hasMedia() bool { return e.cfg.Media != nil }

func (d *downloads) init() {
	d.once.Do(func() {
		d.total = make(chan struct{}, max(DownloadsTotal, 1))
		d.sessions = map[string]*sessionDownloads{}
	})
}

// lock takes d.mu and returns session's queue (made on first use).
func (d *downloads) lock(session string) *sessionDownloads {
	d.init()
	d.mu.Lock()
	return d.queueOf(session)
}

// queueOf is session's queue (made on first use); d.mu held.
func (d *downloads) queueOf(session string) *sessionDownloads {
	q := d.sessions[session]
	if q == nil {
		q = &sessionDownloads{known: map[string]*pendingItem{}, waiting: map[string]*pendingItem{}}
		d.sessions[session] = q
	}
	return q
}

// reserveMediaTx reserves in's media in tx and puts its id into the event.
func (e *Engine) reserveMediaTx(ctx context.Context, tx *sql.Tx, session string, in *InboundMessage) error {
	in.src.Message = Target{ID: in.ID, Chat: in.Chat, ChatLID: in.ChatLID, From: in.From, FromLID: in.FromLID, FromMe: in.FromMe}
	b, err := json.Marshal(in.src)
	if err != nil {
		return err
	}
	it, err := e.cfg.Media.ReserveTx(ctx, tx, media.Reservation{Session: session, Type: in.Media.Type, Filename: in.Media.Filename, Size: in.Media.Size, Source: b})
	if err != nil {
		return err
	}
	in.Media.ID, in.Media.Type, in.Media.Filename = it.ID, it.Type, it.Filename
	return nil
}

// mediaReserved hands the item reserved for in (committed) to the
// session's downloader.
func (e *Engine) mediaReserved(session string, in *InboundMessage) {
	d := &e.dl
	q := d.lock(session)
	switch _, ok := q.known[in.Media.ID]; {
	case ok || q.dropped:
	case len(q.known) >= max(DownloadsHeld, 1):
		q.full = true // it stays pending in the store until the queue drains
	default:
		it := &pendingItem{id: in.Media.ID, src: *in.src}
		q.known[it.id] = it
		q.queue = append(q.queue, it)
	}
	d.mu.Unlock()
	e.kickDownloads(session)
}

// resumeDownloads takes up the session's pending items from the store
// (once per start, and again while batches come back full); the session
// calls it when it connects.
func (e *Engine) resumeDownloads(session string) {
	if !e.hasMedia() {
		return
	}
	d := &e.dl
	q := d.lock(session)
	load := (!q.loaded || q.full) && !q.dropped
	q.loaded = true
	d.mu.Unlock()
	if load {
		e.loadPending(session)
	}
	e.kickDownloads(session)
}

func (e *Engine) loadPending(session string) {
	ps, err := e.cfg.Media.Pending(e.ctx, session, max(DownloadsHeld, 1))
	if err != nil {
		e.log.Error("pending media not read; taken up at the next connect", "session", session, "err", err)
		return
	}
	var stale []media.Pending
	d := &e.dl
	d.mu.Lock()
	q := d.queueOf(session)
	q.full = len(ps) == max(DownloadsHeld, 1)
	for _, p := range ps {
		if _, ok := q.known[p.ID]; ok {
			continue
		}
		var src mediaSource
		if err := json.Unmarshal(p.Source, &src); err != nil || p.Attempts > maxTakeUps {
			stale = append(stale, p)
			continue
		}
		it := &pendingItem{id: p.ID, src: src}
		q.known[it.id] = it
		q.queue = append(q.queue, it)
	}
	d.mu.Unlock()
	for _, p := range stale {
		var src mediaSource
		json.Unmarshal(p.Source, &src)
		e.failMedia(session, &pendingItem{id: p.ID, src: src}, fmt.Sprintf("gave up after %d attempts that did not finish", p.Attempts-1))
	}
	if len(ps) > 0 {
		e.log.Info("taking up pending media downloads", "session", session, "items", len(ps))
	}
}

// kickDownloads starts downloads of the session's queue up to its limit,
// while the session is connected.
func (e *Engine) kickDownloads(session string) {
	s, err := e.session(session)
	if err != nil {
		return
	}
	if _, ok := s.connected(); !ok {
		return // taken up again at the next connect
	}
	d := &e.dl
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.queueOf(session)
	for q.running < max(DownloadsPerSession, 1) && len(q.queue) > 0 && !q.dropped && e.ctx.Err() == nil {
		it := q.queue[0]
		q.queue = q.queue[1:]
		q.running++
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.download(s, it)
			d.mu.Lock()
			q.running--
			refill := len(q.queue) == 0 && q.running == 0 && q.full
			d.mu.Unlock()
			if refill {
				e.resumeDownloads(session)
				return
			}
			e.kickDownloads(session)
		}()
	}
}

// download fetches one item and completes it, fails it, or schedules what
// comes next (a retry, the wait for the phone).
func (e *Engine) download(s *session, it *pendingItem) {
	d := &e.dl
	select {
	case d.total <- struct{}{}:
	case <-e.ctx.Done():
		return
	}
	defer func() { <-d.total }()
	cli, ok := s.connected()
	if !ok {
		e.requeue(s.name, it, true)
		return
	}
	err := e.fetch(cli, s.name, it)
	switch {
	case err == nil:
		return
	case e.ctx.Err() != nil:
		return // closing: the item stays pending for the next start
	case errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith403), errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404),
		errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410):
		e.askPhone(cli, s.name, it, err)
	case errors.Is(err, whatsmeow.ErrInvalidMediaHMAC), errors.Is(err, whatsmeow.ErrInvalidMediaEncSHA256),
		errors.Is(err, whatsmeow.ErrInvalidMediaSHA256), errors.Is(err, whatsmeow.ErrFileLengthMismatch),
		errors.Is(err, whatsmeow.ErrTooShortFile), errors.Is(err, whatsmeow.ErrNoURLPresent), errors.Is(err, whatsmeow.ErrUnknownMediaType),
		errors.Is(err, media.ErrQuota), errors.Is(err, media.ErrTooLarge):
		e.failMedia(s.name, it, "download failed: "+Redact(err.Error()))
	case errors.Is(err, media.ErrNotFound), errors.Is(err, media.ErrFailed):
		e.forget(s.name, it) // no longer pending (failed, or removed with its session)
	default:
		it.failures++
		if it.failures >= max(DownloadAttempts, 1) {
			e.failMedia(s.name, it, fmt.Sprintf("download failed %d times; the last: %s", it.failures, Redact(err.Error())))
			return
		}
		wait := downloadBackoff.Delay(it.failures - 1)
		e.log.Warn("media download failed; retrying", "session", s.name, "media", it.id, "in", wait.Round(time.Millisecond), "err", Redact(err.Error()))
		d.mu.Lock()
		it.timer = time.AfterFunc(wait, func() { e.requeue(s.name, it, false) })
		d.mu.Unlock()
	}
}

// fetch downloads it into a temp file and completes it with media.ready.
func (e *Engine) fetch(cli *whatsmeow.Client, session string, it *pendingItem) error {
	f, err := e.cfg.Media.TempFile()
	if err != nil {
		return err
	}
	src := &it.src
	ctx, cancel := context.WithTimeout(e.ctx, DownloadTimeout+time.Duration(src.Length/max(DownloadMinRate, 1))*time.Second)
	defer cancel()
	err = cli.DownloadMediaWithPathToFile(ctx, src.DirectPath, src.FileEncSHA256, src.FileSHA256, src.MediaKey, whatsmeow.MediaType(src.MediaType), "", false, f)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	// whatsmeow checked the plain bytes against the SHA-256 the sender
	// declared; the media.ready event commits with the item, and tells
	// what the store learned of them.
	ev := MediaEvent{ID: it.id, Kind: src.Kind, Message: src.Message}
	if _, err := e.cfg.Media.Complete(ctx, it.id, f, func(ctx context.Context, tx *sql.Tx, ready media.Item) error {
		ev.Type, ev.Size, ev.SHA256, ev.Filename = ready.Type, ready.Size, ready.SHA256, ready.Filename
		ev.Width, ev.Height, ev.Seconds = ready.Width, ready.Height, ready.Seconds
		_, _, err := e.cfg.Events.AppendOnceTx(ctx, tx, session, events.TypeMediaReady, it.id, ev)
		return err
	}); err != nil {
		return err
	}
	e.cfg.Events.Notify()
	e.forget(session, it)
	e.log.Info("media downloaded", "session", session, "media", it.id, "kind", src.Kind, "bytes", ev.Size)
	return nil
}

// askPhone sends a media retry receipt for an expired link and waits for
// the phone's answer (mediaRetry); after maxMediaRetries it gives up.
func (e *Engine) askPhone(cli *whatsmeow.Client, session string, it *pendingItem, cause error) {
	if it.src.Retries >= maxMediaRetries {
		e.failMedia(session, it, fmt.Sprintf("WhatsApp's media server answered %s, also after the phone was asked %d times to upload it again", Redact(cause.Error()), it.src.Retries))
		return
	}
	// Waiting before the receipt goes out: the phone may answer at once.
	d := &e.dl
	d.mu.Lock()
	q := d.queueOf(session)
	q.waiting[it.src.ID] = it
	it.timer = time.AfterFunc(MediaRetryWait, func() {
		d.mu.Lock()
		still := q.waiting[it.src.ID] == it
		delete(q.waiting, it.src.ID)
		d.mu.Unlock()
		if still && e.ctx.Err() == nil { // closed: the item stays pending for the next start
			e.failMedia(session, it, fmt.Sprintf("WhatsApp's media link expired and the phone did not upload the media again within %v", MediaRetryWait))
		}
	})
	it.src.Retries++
	src := it.src
	d.mu.Unlock()
	if b, err := json.Marshal(src); err == nil {
		if err := e.cfg.Media.SetSource(e.ctx, it.id, b); err != nil {
			e.log.Warn("media retry count not stored", "session", session, "media", it.id, "err", err)
		}
	}
	info, err := src.messageInfo()
	if err == nil {
		err = cli.SendMediaRetryReceipt(e.ctx, info, src.MediaKey)
	}
	if err == nil {
		e.log.Info("media link expired; asked the phone to upload it again", "session", session, "media", it.id, "status", Redact(cause.Error()))
		return
	}
	d.mu.Lock()
	still := q.waiting[src.ID] == it
	delete(q.waiting, src.ID)
	it.timer.Stop()
	it.failures++
	d.mu.Unlock()
	if !still {
		return // answered or given up meanwhile
	}
	if it.failures >= max(DownloadAttempts, 1) {
		e.failMedia(session, it, "the link expired and asking the phone to upload it again failed: "+Redact(err.Error()))
		return
	}
	e.log.Warn("media retry receipt not sent; retrying", "session", session, "media", it.id, "err", Redact(err.Error()))
	d.mu.Lock()
	it.timer = time.AfterFunc(downloadBackoff.Delay(it.failures-1), func() { e.requeue(session, it, false) })
	d.mu.Unlock()
}

// mediaRetry is the phone's answer to a media retry receipt: the new
// direct path of the media of message evt.MessageID, downloaded at once.
func (e *Engine) mediaRetry(session string, evt *waEvents.MediaRetry) {
	if !e.hasMedia() {
		return
	}
	d := &e.dl
	q := d.lock(session)
	it := q.waiting[string(evt.MessageID)]
	if it != nil {
		delete(q.waiting, string(evt.MessageID))
		if it.timer != nil {
			it.timer.Stop()
		}
	}
	d.mu.Unlock()
	if it == nil {
		return // not ours, or answered after we gave up
	}
	notif, err := whatsmeow.DecryptMediaRetryNotification(evt, it.src.MediaKey)
	switch {
	case errors.Is(err, whatsmeow.ErrMediaNotAvailableOnPhone):
		e.failMedia(session, it, "WhatsApp's media link expired and the media is no longer on the sender's phone")
		return
	case err != nil:
		e.failMedia(session, it, "WhatsApp's media link expired and the phone's answer could not be read: "+Redact(err.Error()))
		return
	case notif.GetResult() != waMmsRetry.MediaRetryNotification_SUCCESS || notif.GetDirectPath() == "":
		e.failMedia(session, it, "WhatsApp's media link expired and the phone could not upload it again ("+notif.GetResult().String()+")")
		return
	}
	it.src.DirectPath = notif.GetDirectPath()
	if b, err := json.Marshal(it.src); err == nil {
		if err := e.cfg.Media.SetSource(e.ctx, it.id, b); err != nil && errors.Is(err, media.ErrNotFound) {
			e.forget(session, it)
			return
		}
	}
	e.log.Info("the phone uploaded expired media again; downloading it", "session", session, "media", it.id)
	e.requeue(session, it, true)
}

// requeue puts it back into its session's queue (front: ahead of newer
// items) and starts what may start.
func (e *Engine) requeue(session string, it *pendingItem, front bool) {
	d := &e.dl
	d.mu.Lock()
	q := d.queueOf(session)
	if q.dropped || q.known[it.id] != it {
		d.mu.Unlock()
		return
	}
	if front {
		q.queue = append([]*pendingItem{it}, q.queue...)
	} else {
		q.queue = append(q.queue, it)
	}
	d.mu.Unlock()
	e.kickDownloads(session)
}

// forget drops it from its session's downloader.
func (e *Engine) forget(session string, it *pendingItem) {
	d := &e.dl
	d.mu.Lock()
	q := d.queueOf(session)
	if q.known[it.id] == it {
		delete(q.known, it.id)
	}
	if it.timer != nil {
		it.timer.Stop()
	}
	d.mu.Unlock()
}

// failMedia gives up on it: failed in the store with a media.failed event
// in the same transaction.
func (e *Engine) failMedia(session string, it *pendingItem, reason string) {
	e.forget(session, it)
	ev := MediaEvent{ID: it.id, Kind: it.src.Kind, Message: it.src.Message, Reason: reason}
	err := e.cfg.Media.Fail(e.ctx, it.id, reason, func(ctx context.Context, tx *sql.Tx) error {
		_, appended, err := e.cfg.Events.AppendOnceTx(ctx, tx, session, events.TypeMediaFailed, it.id, ev)
		if err == nil && !appended {
			return errRepeat
		}
		return err
	})
	switch {
	case err == nil:
		e.cfg.Events.Notify()
		e.log.Warn("media download given up", "session", session, "media", it.id, "reason", reason)
	case errors.Is(err, media.ErrNotFound), errors.Is(err, errRepeat):
	default:
		e.log.Error("failed media not recorded; it stays pending", "session", session, "media", it.id, "err", err)
	}
}

// dropDownloads stops the downloads of a deleted session and fails its
// pending items (without events: the session is gone).
func (e *Engine) dropDownloads(ctx context.Context, session string) {
	if !e.hasMedia() {
		return
	}
	d := &e.dl
	q := d.lock(session)
	q.dropped = true
	for _, it := range q.known {
		if it.timer != nil {
			it.timer.Stop()
		}
	}
	q.queue, q.known, q.waiting = nil, map[string]*pendingItem{}, map[string]*pendingItem{}
	d.mu.Unlock()
	for {
		ps, err := e.cfg.Media.Pending(ctx, session, max(DownloadsHeld, 1))
		if err != nil {
			e.log.Error("pending media of a deleted session not dropped", "session", session, "err", err)
			return
		}
		for _, p := range ps {
			if err := e.cfg.Media.Fail(ctx, p.ID, "session deleted", nil); err != nil && !errors.Is(err, media.ErrNotFound) {
				e.log.Error("pending media of a deleted session not dropped", "session", session, "media", p.ID, "err", err)
				return
			}
		}
		if len(ps) < max(DownloadsHeld, 1) {
			return
		}
	}
}

// forgetSession drops a deleted session's queue for good once its name
// may be taken again.
func (e *Engine) forgetSession(session string) {
	d := &e.dl
	d.init()
	d.mu.Lock()
	delete(d.sessions, session)
	d.mu.Unlock()
}
