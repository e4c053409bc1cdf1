package app

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLogLimiter: per interval the first burst lines of one level and
// message pass, the rest are dropped and reported in one summary line
// once the interval is over; other messages and levels are counted apart.
func TestLogLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var buf bytes.Buffer
	h := newLogLimiter(slog.NewTextHandler(&buf, nil), 3, 10*time.Second, func() time.Time { return now })
	log := slog.New(h).With("component", "api")
	for i := range 1000 {
		log.Error("request failed", "request_id", fmt.Sprint(i))
	}
	log.Warn("request failed") // another level: its own budget
	log.Error("other")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 3 + 1 + 1:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "request_id=0") || !strings.Contains(lines[2], "request_id=2") || !strings.Contains(lines[2], "component=api") {
		t.Errorf("the first lines are not the first three:\n%s", buf.String())
	}
	buf.Reset()
	now = now.Add(5 * time.Second)
	log.Error("request failed")
	if buf.Len() != 0 {
		t.Fatalf("a line within the interval passed: %s", buf.String())
	}
	now = now.Add(6 * time.Second)
	log.Info("something else")
	out := buf.String()
	if !strings.Contains(out, `"suppressed 998 similar lines"`) || !strings.Contains(out, `of="request failed"`) || !strings.Contains(out, "level=ERROR") {
		t.Fatalf("no summary after the interval:\n%s", out)
	}
	if strings.Count(out, "suppressed") != 1 || !strings.Contains(out, "something else") {
		t.Fatalf("want one summary, then the line:\n%s", out)
	}
	buf.Reset()
	log.Error("request failed")
	if !strings.Contains(buf.String(), "request failed") || strings.Contains(buf.String(), "suppressed") {
		t.Fatalf("a new interval's first line: %s", buf.String())
	}
}
