package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// waLogger adapts slog to whatsmeow's logger. whatsmeow's Info is chatty
// and can carry message metadata, so it goes to debug; bodies are only ever
// in its debug output, which is off by default. Warn and Error lines embed
// JIDs and node XML: the engine's logger redacts them (see Redact).
type waLogger struct{ l *slog.Logger }

func newWALogger(l *slog.Logger, module string) waLog.Logger {
	return waLogger{l.With("component", "whatsmeow", "module", module)}
}

func (w waLogger) Errorf(f string, a ...any) { w.l.Error(fmt.Sprintf(f, a...)) }
func (w waLogger) Warnf(f string, a ...any)  { w.l.Warn(fmt.Sprintf(f, a...)) }
func (w waLogger) Infof(f string, a ...any)  { w.l.Debug(fmt.Sprintf(f, a...)) }
func (w waLogger) Debugf(f string, a ...any) { w.l.Debug(fmt.Sprintf(f, a...)) }
func (w waLogger) Sub(m string) waLog.Logger { return waLogger{w.l.With("sub", m)} }

// redactMinDigits is the shortest digit run Redact masks: shorter runs are
// counts, ports and codes, not phone numbers or account ids.
const redactMinDigits = 6

// Redact masks phone numbers and account ids in s: every run of 6 or more
// ASCII digits that does not touch a letter keeps only its last 3 digits
// ("+4915123456789" and "4915123456789@s.whatsapp.net" become "+…789" and
// "…789@s.whatsapp.net"). Runs inside words, such as hex message ids
// ("3EB0123456AB") or durations ("1.234567s"), are left alone.
func Redact(s string) string {
	var b strings.Builder
	last := 0 // s[last:i] is not yet copied
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j-i >= redactMinDigits && (i == 0 || !isLetter(s[i-1])) && (j == len(s) || !isLetter(s[j])) {
			b.WriteString(s[last:i])
			b.WriteString("…")
			b.WriteString(s[j-3 : j])
			last = j
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// redactHandler applies Redact to every record at info and above (message
// and attributes), so no full phone number reaches the log above debug,
// whether the line is ours or whatsmeow's. Debug stays raw for debugging.
type redactHandler struct{ h slog.Handler }

// newRedactingLogger wraps l's handler with redactHandler.
func newRedactingLogger(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(redactHandler); ok {
		return l
	}
	return slog.New(redactHandler{l.Handler()})
}

func (r redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level < slog.LevelInfo {
		return r.h.Handle(ctx, rec)
	}
	out := slog.NewRecord(rec.Time, rec.Level, Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

// WithAttrs redacts attributes bound in advance at every level: they are
// names (session, module), which a number would only rarely be.
func (r redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return redactHandler{r.h.WithAttrs(red)}
}

func (r redactHandler) WithGroup(name string) slog.Handler { return redactHandler{r.h.WithGroup(name)} }

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, x := range g {
			red[i] = redactAttr(x)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case nil:
		case error:
			return slog.String(a.Key, Redact(x.Error()))
		default:
			return slog.String(a.Key, Redact(fmt.Sprint(x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
