package wasim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// tcpSockets is the TCP sockets (any state, IPv4 and IPv6) that this process
// holds: the socket inodes among /proc/self/fd matched against
// /proc/self/net/tcp{,6}, so other processes' sockets do not count.
func tcpSockets(t testing.TB) map[string]string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			mine[strings.TrimSuffix(ino, "]")] = true
		}
	}
	out := map[string]string{}
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // no IPv6
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			if f := strings.Fields(line); len(f) > 9 && mine[f[9]] {
				out[f[9]] = f[1] + " state " + f[3]
			}
		}
	}
	return out
}

// TestInMemoryOpensNoSocket: a client pairs, sends a text and uploads and
// downloads media (media_conn) through an InMemory server while this process
// gains no TCP socket, listening or connected.
func TestInMemoryOpensNoSocket(t *testing.T) {
	before := tcpSockets(t)
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15551001")
	ct, _ := s.Contact("15551002")
	ctx := context.Background()
	img := bytes.Repeat([]byte("in memory "), 1000)
	up, err := tc.Upload(ctx, img, whatsmeow.MediaImage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.SendMessage(ctx, ct.JID(), &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, Mimetype: proto.String("image/png"),
		FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength)}}); err != nil {
		t.Fatal(err)
	}
	in := ct.Inbox()
	if got, err := ct.Image(in[len(in)-1]); err != nil || !bytes.Equal(got, img) {
		t.Fatalf("the contact decrypted %d bytes: %v", len(got), err)
	}
	if _, err := tc.Download(ctx, in[len(in)-1].Message.GetImageMessage()); err != nil {
		t.Fatalf("download over the in-memory connection: %v", err)
	}
	for ino, s := range tcpSockets(t) {
		if _, ok := before[ino]; !ok {
			t.Errorf("a TCP socket appeared: inode %s, %s", ino, s)
		}
	}
}
