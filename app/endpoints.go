package app

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"waappliance/netstack"
	"waappliance/peers"
)

// EndpointsFile keeps, across a restart, where the peers with a live
// WireGuard session were (their UDP "IP:port"; 0600 in the 0700 state dir,
// never logged). A restarted appliance has none of the old sessions: a
// connected client would send into the void until WireGuard's data timeout
// (15 s) makes it handshake again, and its TCP connections time out on top.
// So the new process sends each of them a handshake at start (Device.Reach)
// and the client has a new session within a round trip.
const EndpointsFile = "endpoints.json"

// endpointsEvery is how often a serving appliance saves the endpoints (when
// they changed), so a crash, not only a clean stop, is covered.
const endpointsEvery = 30 * time.Second

// liveSession is how recent a handshake must be for its session to be
// worth reviving: WireGuard drops a session after 3 minutes without one.
const liveSession = 3 * time.Minute

// liveEndpoints are the endpoints of the peers of dev with a live session.
func liveEndpoints(dev *netstack.Device, now time.Time) map[peers.Key]string {
	st, err := dev.Stats()
	if err != nil {
		return nil
	}
	out := map[peers.Key]string{}
	for k, s := range st {
		if s.Endpoint != "" && !s.LastHandshake.IsZero() && now.Sub(s.LastHandshake) < liveSession {
			out[k] = s.Endpoint
		}
	}
	return out
}

// saveEndpoints writes eps to the state dir atomically (an empty set
// removes the file).
func saveEndpoints(dir string, eps map[peers.Key]string) error {
	path := filepath.Join(dir, EndpointsFile)
	if len(eps) == 0 {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	byName := make(map[string]string, len(eps))
	for k, ep := range eps {
		byName[k.String()] = ep
	}
	b, err := json.Marshal(byName)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save endpoints: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save endpoints: %w", err)
	}
	return nil
}

// loadEndpoints reads what saveEndpoints wrote; a missing or bad file is
// an empty set (it is only a hint).
func loadEndpoints(dir string) map[peers.Key]string {
	b, err := os.ReadFile(filepath.Join(dir, EndpointsFile))
	if err != nil {
		return nil
	}
	var byName map[string]string
	if json.Unmarshal(b, &byName) != nil {
		return nil
	}
	out := make(map[peers.Key]string, len(byName))
	for s, ep := range byName {
		if k, err := peers.ParseKey(s); err == nil {
			out[k] = ep
		}
	}
	return out
}

// endpointSaver saves the live endpoints when they changed.
type endpointSaver struct {
	dir  string
	last map[peers.Key]string
}

func (s *endpointSaver) save(dev *netstack.Device, now time.Time) error {
	eps := liveEndpoints(dev, now)
	if maps.Equal(eps, s.last) {
		return nil
	}
	if err := saveEndpoints(s.dir, eps); err != nil {
		return err
	}
	s.last = eps
	return nil
}
