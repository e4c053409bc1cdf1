package audit

import (
	"context"
	"path/filepath"
	"testing"

	"waappliance/store"
)

// BenchmarkAudit is what a lone mutating request's audit costs its
// caller on SQLite, one request at a time: "begin" is Begin's commit (the
// only one before the handler now), "begin+finish-commit" adds the commit
// of its status, which the answer waited for before Finish was deferred.
//
//	go test ./audit -run XXX -bench Audit
func BenchmarkAudit(b *testing.B) {
	for _, name := range []string{"begin", "begin+finish-commit"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db, err := store.Open(ctx, filepath.Join(b.TempDir(), "s"), true)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			l := New(db, Options{})
			e := Entry{Peer: "a", Method: "POST", Route: "/v1/sessions/{session}/messages", Target: "s", RequestID: "r", Status: 202}
			for b.Loop() {
				id, err := l.Begin(ctx, e)
				if err != nil {
					b.Fatal(err)
				}
				l.Finish(ctx, id, e)
				if name != "begin" {
					if err := l.flushFinishes(ctx); err != nil {
						b.Fatal(err)
					}
				} else if l.PendingFinishes() > 100 {
					b.StopTimer()
					l.flushFinishes(ctx)
					b.StartTimer()
				}
			}
		})
	}
}
