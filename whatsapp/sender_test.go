package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestRecipientCache: "on WhatsApp" is asked once per number and kept a
// day, "not on WhatsApp" an hour, an error not at all; the cache never
// holds more than maxRecipients numbers.
func TestRecipientCache(t *testing.T) {
	ctx := context.Background()
	var c recipientCache
	asked := map[string]int{}
	fail := false
	ask := func(_ context.Context, user string) (bool, error) {
		asked[user]++
		if fail {
			return false, errors.New("offline")
		}
		return user != "15550009", nil
	}
	t0 := time.Unix(1_800_000_000, 0)
	check := func(user string, at time.Time) bool {
		t.Helper()
		on, err := c.check(ctx, user, at, ask)
		if err != nil {
			t.Fatal(err)
		}
		return on
	}
	for i := 0; i < 3; i++ {
		if !check("15550002", t0.Add(time.Duration(i)*time.Minute)) || check("15550009", t0.Add(time.Duration(i)*time.Minute)) {
			t.Fatal("wrong answer")
		}
	}
	if asked["15550002"] != 1 || asked["15550009"] != 1 {
		t.Fatalf("asked %v; want once each", asked)
	}
	check("15550009", t0.Add(61*time.Minute)) // the no expired
	check("15550002", t0.Add(61*time.Minute)) // the yes did not
	if asked["15550002"] != 1 || asked["15550009"] != 2 {
		t.Fatalf("after an hour asked %v", asked)
	}
	check("15550002", t0.Add(25*time.Hour))
	if asked["15550002"] != 2 {
		t.Fatalf("after a day asked %v", asked)
	}
	fail = true
	if _, err := c.check(ctx, "15550003", t0, ask); err == nil {
		t.Fatal("an error was swallowed")
	}
	fail = false
	check("15550003", t0)
	if asked["15550003"] != 2 {
		t.Fatalf("an error was remembered: asked %v", asked)
	}
	for i := 0; i < maxRecipients+100; i++ {
		check(fmt.Sprintf("1666%07d", i), t0)
	}
	if n := len(c.m); n > maxRecipients {
		t.Fatalf("cache holds %d numbers", n)
	}
}

// TestFreshQueue: the sender takes a handed-over message without reading
// the queue only when it is certainly the one queued message: after a
// whole-queue read found nothing, with no hand-over during that read, and
// exactly one since; every other order of events makes it read.
func TestFreshQueue(t *testing.T) {
	msg := func(id string) Message { return Message{ID: id} }
	emptyRead := func(f *freshQueue) { g, _ := f.generation(); f.foundEmpty(g) }
	cases := []struct {
		name string
		run  func(f *freshQueue)
		want string // the id take gives, "" for none
	}{
		{"idle, one send", func(f *freshQueue) { emptyRead(f); f.handOff(msg("x")) }, "x"},
		{"no read yet (a fresh start)", func(f *freshQueue) { f.handOff(msg("x")) }, ""},
		{"two sends", func(f *freshQueue) { emptyRead(f); f.handOff(msg("x")); f.handOff(msg("y")) }, ""},
		{"a send committed during the read", func(f *freshQueue) {
			g, _ := f.generation()
			f.handOff(msg("x")) // not seen by the read, handed over before it ended
			f.foundEmpty(g)
			f.handOff(msg("y"))
		}, ""},
		{"a read that found something", func(f *freshQueue) {
			emptyRead(f)
			f.handOff(msg("x"))
			f.take()            // the sender takes x...
			f.handOff(msg("y")) // ...and y comes while x goes out
		}, ""},
		{"queued rows changed by another writer", func(f *freshQueue) { emptyRead(f); f.handOff(msg("x")); f.invalidate() }, ""},
		{"a second idle period", func(f *freshQueue) {
			emptyRead(f)
			f.handOff(msg("x"))
			f.take()
			emptyRead(f)
			f.handOff(msg("y"))
		}, "y"},
	}
	for _, c := range cases {
		var f freshQueue
		c.run(&f)
		m, ok := f.take()
		if got := map[bool]string{true: m.ID}[ok]; got != c.want {
			t.Errorf("%s: take gave %q (%v), want %q", c.name, m.ID, ok, c.want)
		}
		if _, ok := f.take(); ok {
			t.Errorf("%s: a second take gave a message", c.name)
		}
	}
}
