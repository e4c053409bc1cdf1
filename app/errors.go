package app

import (
	"errors"
	"fmt"
	"strings"

	"waappliance/api"
	"waappliance/peers"
)

// peerMessages is the one place the command line words peer errors. A
// registry error carries the peer's name (*peers.PeerError) and a sentinel;
// the format gets the name. Sentinels not listed print as
// `peer "NAME": <their own text>`.
var peerMessages = []struct {
	err    error
	format string
}{
	{peers.ErrNotFound, "peer %q not found"},
	{peers.ErrExists, "peer %q already exists"},
}

// describe turns an error into what the command line prints: no Go
// function names such as `peers.Add "alice": `, the sentinel's own words
// and whatever detail follows them.
func describe(err error) string {
	var pe *peers.PeerError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	for _, m := range peerMessages {
		if errors.Is(pe.Err, m.err) {
			return fmt.Sprintf(m.format, pe.Name) + detail(pe.Err, m.err)
		}
	}
	return fmt.Sprintf("peer %q: %v", pe.Name, pe.Err)
}

// detail is what err's text says after the sentinel's ("" when nothing).
func detail(err, sentinel error) string {
	msg, s := err.Error(), sentinel.Error()
	if i := strings.Index(msg, s); i >= 0 {
		return msg[i+len(s):]
	}
	return ""
}

// peerFailed words an error of a command on the peer name that went
// through the serving appliance as the direct path words the registry's:
// an API answer made from a sentinel (api.ResponseError.Err) becomes the
// *peers.PeerError the registry returns, so describe prints the same text
// either way. Other errors (internal, refusals) print the API's message.
func peerFailed(name string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) && re.Err != nil {
		return &peers.PeerError{Op: "control", Name: name, Err: re}
	}
	return err
}
