package wasim

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// eventually waits until cond holds (nodes without an answer, such as
// chat states, give the test nothing else to wait for).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadReceiptsAndChatPresence: the client's MarkRead and
// SendChatPresence reach the contact they are addressed to, by LID or by
// phone number.
func TestReadReceiptsAndChatPresence(t *testing.T) {
	s := newServer(t)
	tc := newClient(t, s)
	pairByQR(t, s, tc, "15551601")
	ct, _ := s.Contact("15551602")
	other, _ := s.Contact("15551603")
	ctx := context.Background()
	me := tc.Store.ID.ToNonAD()
	var infos []types.MessageInfo
	for _, text := range []string{"one", "two", "three"} {
		if _, err := ct.Send(ctx, me, text); err != nil {
			t.Fatal(err)
		}
		infos = append(infos, tc.waitFor(t, text, is[*events.Message]).(*events.Message).Info)
	}
	if err := tc.MarkRead(ctx, []types.MessageID{infos[0].ID}, time.Now(), infos[0].Chat, infos[0].Sender); err != nil {
		t.Fatal(err)
	}
	if err := tc.MarkRead(ctx, []types.MessageID{infos[1].ID, infos[2].ID}, time.Now(), ct.JID(), infos[1].Sender); err != nil {
		t.Fatal(err)
	}
	want := []string{infos[0].ID, infos[1].ID, infos[2].ID}
	eventually(t, "read receipts", func() bool { return slices.Equal(ct.ReadReceipts(), want) })

	for _, st := range []struct {
		state types.ChatPresence
		media types.ChatPresenceMedia
	}{{types.ChatPresenceComposing, ""}, {types.ChatPresenceComposing, types.ChatPresenceMediaAudio}, {types.ChatPresencePaused, ""}} {
		if err := tc.SendChatPresence(ctx, ct.LID(), st.state, st.media); err != nil {
			t.Fatal(err)
		}
	}
	if err := tc.SendChatPresence(ctx, ct.JID(), types.ChatPresenceComposing, ""); err != nil {
		t.Fatal(err)
	}
	want = []string{"composing", "composing/audio", "paused", "composing"}
	eventually(t, "chat presence", func() bool { return slices.Equal(ct.ChatPresence(), want) })
	if len(other.ReadReceipts()) != 0 || len(other.ChatPresence()) != 0 {
		t.Fatal("another contact got them")
	}
	// The connection is still fine.
	if _, err := ct.Send(ctx, me, "still here"); err != nil {
		t.Fatal(err)
	}
	tc.waitFor(t, "a message after", is[*events.Message])
}
