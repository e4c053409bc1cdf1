package store

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"sync"
	"testing"
)

// TestSettings: Get, Set, All and Add on both engines, outside and inside a
// write transaction (where a rollback takes the change back), and Add as a
// counter under concurrent writers.
func TestSettings(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		db := e.open(t)
		ctx := context.Background()
		s := db.Settings()
		if v, ok, err := s.Get(ctx, "peers_generation"); err != nil || !ok || v != "0" {
			t.Fatalf("seeded peers_generation: %q %v %v", v, ok, err)
		}
		if _, ok, err := s.Get(ctx, "nope"); err != nil || ok {
			t.Fatalf("an unset key: %v %v", ok, err)
		}
		for _, v := range []string{"a", "b ' \" $1 ?"} {
			if err := s.Set(ctx, "k", v); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := s.Get(ctx, "k"); err != nil || !ok || got != v {
				t.Fatalf("Get after Set %q: %q %v %v", v, got, ok, err)
			}
		}
		if n, err := s.Add(ctx, "fresh", 5); err != nil || n != 5 {
			t.Fatalf("Add to an unset key: %d %v", n, err)
		}
		if n, err := s.Add(ctx, "fresh", -7); err != nil || n != -2 {
			t.Fatalf("Add -7: %d %v", n, err)
		}
		if _, err := s.Add(ctx, "k", 1); err == nil {
			t.Fatal("Add to a value that is not a number")
		}
		err := db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if err := SettingsOf(tx).Set(ctx, "k", "in tx"); err != nil {
				return err
			}
			return sql.ErrTxDone // any error: roll back
		})
		if err != sql.ErrTxDone {
			t.Fatal(err)
		}
		all, err := s.All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"peers_generation": "0", "events_pruned_through": "0", "k": "b ' \" $1 ?", "fresh": "-2"}
		if !maps.Equal(all, want) {
			t.Fatalf("All: %v, want %v", all, want)
		}
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				for range 10 {
					err := db.WriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
						_, err := SettingsOf(tx).Add(ctx, "peers_generation", 1)
						return err
					})
					if err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if v, _, _ := s.Get(ctx, "peers_generation"); v != "100" {
			t.Fatalf("peers_generation %s after 100 increments", v)
		}
	})
}

// TestOpenDSNDefault: an empty URL is SQLite in the state directory, as
// Open.
func TestOpenDSNDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	db, err := OpenDSN(context.Background(), "", Options{Dir: dir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect != SQLite || db.Path != filepath.Join(dir, FileName) {
		t.Fatalf("dialect %q path %q", db.Dialect, db.Path)
	}
}
