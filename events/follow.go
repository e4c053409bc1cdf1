package events

import (
	"context"
)

// Source is what Follow reads: a *Log, or a stand-in in a test. It exists
// so the API's stream and the webhooks follow the log through one loop
// while each keeps its own small interface.
type Source interface {
	List(ctx context.Context, f Filter) ([]Event, error)
	// Changed is closed at the next append.
	Changed() <-chan struct{}
	// Newer is false when no event after the cursor was appended, so a
	// woken follower can skip its query.
	Newer(after int64) bool
}

// Follower delivers the events of a Follow in batches.
type Follower struct {
	// C carries batches of events in id order, none empty; it is closed
	// when the Follow's ctx ends or a read fails (then Err says why).
	C   <-chan []Event
	err error
	end chan struct{}
}

// Err is the read error that ended the follower, once C is closed; nil
// when it ended with its context.
func (f *Follower) Err() error {
	<-f.end
	return f.err
}

// Follow reads the events f selects (f.After is the cursor, exclusive;
// without f.HasAfter it starts at the oldest event kept) and keeps
// following the log: a follower that has read everything sleeps until the
// next append (src.Changed) and skips the query when nothing past its
// cursor was appended (src.Newer), so streams × appends do not all become
// queries. The first read happens before Follow returns, so a cursor out
// of retention is an error (*CursorExpiredError) before anything is
// delivered. At most one batch is read ahead of the consumer: a slow
// consumer slows its own follower only. The follower ends with ctx.
func Follow(ctx context.Context, src Source, f Filter) (*Follower, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, MaxLimit)
	first, err := src.List(ctx, f)
	if err != nil {
		return nil, err
	}
	c := make(chan []Event)
	fl := &Follower{C: c, end: make(chan struct{})}
	go func() {
		defer close(fl.end)
		defer close(c)
		fl.err = follow(ctx, src, f, first, c)
		if ctx.Err() != nil {
			fl.err = nil
		}
	}()
	return fl, nil
}

func follow(ctx context.Context, src Source, f Filter, batch []Event, c chan<- []Event) error {
	for {
		if len(batch) > 0 {
			select {
			case c <- batch:
			case <-ctx.Done():
				return nil
			}
			f.After, f.HasAfter = batch[len(batch)-1].ID, true
		}
		full := len(batch) == f.Limit
		// Taken before the read: an append after the read closes it.
		changed := src.Changed()
		batch = nil
		if full || src.Newer(f.After) {
			var err error
			if batch, err = src.List(ctx, f); err != nil {
				return err
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
