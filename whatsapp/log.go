package whatsapp

import (
	"fmt"
	"log/slog"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// waLogger adapts slog to whatsmeow's logger. whatsmeow's Info is chatty
// and can carry message metadata, so it goes to debug; bodies are only ever
// in its debug output, which is off by default.
type waLogger struct{ l *slog.Logger }

func newWALogger(l *slog.Logger, module string) waLog.Logger {
	return waLogger{l.With("component", "whatsmeow", "module", module)}
}

func (w waLogger) Errorf(f string, a ...any) { w.l.Error(fmt.Sprintf(f, a...)) }
func (w waLogger) Warnf(f string, a ...any)  { w.l.Warn(fmt.Sprintf(f, a...)) }
func (w waLogger) Infof(f string, a ...any)  { w.l.Debug(fmt.Sprintf(f, a...)) }
func (w waLogger) Debugf(f string, a ...any) { w.l.Debug(fmt.Sprintf(f, a...)) }
func (w waLogger) Sub(m string) waLog.Logger { return waLogger{w.l.With("sub", m)} }
