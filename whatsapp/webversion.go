package whatsapp

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"
	waStore "go.mau.fi/whatsmeow/store"
)

// WebVersion says which WhatsApp web client version the sessions announce
// (WhatsApp retires old ones, and numbers that connect with an outdated one
// are banned more readily).
type WebVersion struct {
	// InUse is the version sessions connect with.
	InUse string `json:"in_use"`
	// BuiltIn is whatsmeow's, used unless WhatsApp said a newer one.
	BuiltIn string `json:"built_in"`
	// Source is "built-in" or "web.whatsapp.com".
	Source string `json:"source"`
	// CheckedAt is when WhatsApp was asked; absent when it was not (sandbox,
	// tests) or not yet.
	CheckedAt *time.Time `json:"checked_at,omitempty"`
	// Error says why asking failed (offline, say); the built-in one is used.
	Error string `json:"error,omitempty"`
}

// WebVersionSetting is the settings key under which the engine records its
// WebVersion (JSON), for `waappliance doctor`.
const WebVersionSetting = "whatsapp_web_version"

// LatestWebVersion asks web.whatsapp.com for the current web client
// version over HTTPS (whatsmeow's GetLatestVersion). It is what
// Config.LatestVersion is set to on a real appliance; never in sandbox mode
// or tests, which must not reach the internet.
func LatestWebVersion(ctx context.Context) (waStore.WAVersionContainer, error) {
	v, err := whatsmeow.GetLatestVersion(ctx, &http.Client{})
	if err != nil {
		return waStore.WAVersionContainer{}, err
	}
	return *v, nil
}

// versionCheckTimeout bounds asking WhatsApp for its web client version.
var versionCheckTimeout = 5 * time.Second

// webVersion is the engine's version check: done is closed once the version
// sessions connect with is settled (at once when there is nothing to ask).
type webVersion struct {
	done    chan struct{}
	started atomic.Bool // Start began the check: connects wait for done
	mu      sync.Mutex
	v       WebVersion
}

// checkWebVersion settles the web client version in the background: it
// asks cfg.LatestVersion (bounded by versionCheckTimeout) and uses the
// answer when newer than the built-in one; offline, it keeps the built-in
// one quietly (one info line). Connects wait for it (connect), so no client
// reads the version while it changes.
func (e *Engine) checkWebVersion() {
	builtIn := waStore.GetWAVersion()
	e.ver.mu.Lock()
	e.ver.v = WebVersion{InUse: builtIn.String(), BuiltIn: builtIn.String(), Source: "built-in"}
	e.ver.mu.Unlock()
	if e.cfg.LatestVersion == nil {
		e.recordWebVersion(e.WebVersion())
		return
	}
	if !e.ver.started.CompareAndSwap(false, true) {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(e.ver.done)
		ctx, cancel := context.WithTimeout(e.ctx, versionCheckTimeout)
		defer cancel()
		latest, err := e.cfg.LatestVersion(ctx)
		now := e.cfg.Now().UTC()
		e.ver.mu.Lock()
		e.ver.v.CheckedAt = &now
		switch {
		case err != nil:
			e.ver.v.Error = Redact(err.Error())
		case builtIn.LessThan(latest):
			waStore.SetWAVersion(latest)
			e.ver.v.InUse, e.ver.v.Source = latest.String(), "web.whatsapp.com"
		}
		v := e.ver.v
		e.ver.mu.Unlock()
		if err != nil {
			e.log.Info("could not ask WhatsApp for its current web client version; using the built-in one", "version", v.InUse, "err", err)
		} else {
			e.log.Info("web client version", "version", v.InUse, "source", v.Source, "latest", latest.String())
		}
		e.recordWebVersion(v)
	}()
}

// recordWebVersion keeps v in the settings, for doctor.
func (e *Engine) recordWebVersion(v WebVersion) {
	if b, err := json.Marshal(v); err == nil {
		if err := e.cfg.DB.Settings().Set(e.ctx, WebVersionSetting, string(b)); err != nil {
			e.log.Warn("recording the web client version failed", "err", err)
		}
	}
}

// waitWebVersion waits until the version check has settled or ctx ends.
func (e *Engine) waitWebVersion(ctx context.Context) {
	if !e.ver.started.Load() {
		return
	}
	select {
	case <-e.ver.done:
	case <-ctx.Done():
	}
}

// WebVersion reports the web client version in use and where it came from.
func (e *Engine) WebVersion() WebVersion {
	e.ver.mu.Lock()
	defer e.ver.mu.Unlock()
	return e.ver.v
}
