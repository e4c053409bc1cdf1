package whatsapp

import (
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/types"

	"waappliance/events"
)

// Messages that change another message — reactions, edits, revokes, poll
// votes — are events of their own, each naming the message it changes.

// Target names the message an event changes: its id, its chat and its
// sender (phone-number form when known, LIDs beside), from_me when this
// session's account sent it.
type Target struct {
	ID      string `json:"id"`
	Chat    string `json:"chat"`
	ChatLID string `json:"chat_lid,omitempty"`
	From    string `json:"from"`
	FromLID string `json:"from_lid,omitempty"`
	FromMe  bool   `json:"from_me"`
}

// Reaction is the data of a message.reaction event: Emoji "" removes the
// sender's earlier reaction to the message.
type Reaction struct {
	origin
	Message Target `json:"message"`
	Emoji   string `json:"emoji"`
}

// Edit is the data of a message.edited event: the new text (of a text
// message) or caption (of a media message).
type Edit struct {
	origin
	Message  Target    `json:"message"`
	Text     string    `json:"text,omitempty"`
	Caption  string    `json:"caption,omitempty"`
	EditedAt time.Time `json:"edited_at"`
}

// Deletion is the data of a message.deleted event: the message was
// revoked for everyone (by its sender, or a group admin).
type Deletion struct {
	origin
	Message Target `json:"message"`
}

// PollVote is the data of a poll.vote event: the options the voter chose
// now (none: the vote was withdrawn), by name. Options the appliance could
// not name (the poll is not in the outbox or the event log any more) are
// counted in Unknown; Error says why a vote could not be read at all.
type PollVote struct {
	origin
	Message Target   `json:"message"`
	Options []string `json:"options"`
	Unknown int      `json:"unknown_options,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func (in *inbound) change(typ string, data any) record {
	return record{typ: typ, key: in.o.key(), data: data}
}

func (in *inbound) reaction() record {
	r := in.msg.ReactionMessage
	if r == nil {
		dec, err := in.cli.DecryptReaction(in.ctx, in.m)
		if err != nil {
			in.e.log.Warn("encrypted reaction not decrypted", "session", in.session, "id", in.o.ID, "err", err)
			msg := in.message("unsupported")
			msg.WhatsAppType = "encReactionMessage"
			return in.received(msg)
		}
		r = dec
		if r.Key == nil {
			r.Key = in.msg.GetEncReactionMessage().GetTargetMessageKey()
		}
	}
	return in.change(events.TypeMessageReaction, Reaction{origin: in.o, Message: in.target(r.GetKey()), Emoji: r.GetText()})
}

func (in *inbound) edit() record {
	pm := in.msg.GetProtocolMessage()
	n := unwrap(pm.GetEditedMessage())
	ed := Edit{origin: in.o, Message: in.target(pm.GetKey()), EditedAt: in.o.Timestamp}
	if ms := pm.GetTimestampMS(); ms > 0 {
		ed.EditedAt = time.UnixMilli(ms).UTC()
	}
	switch kind, text := summary(n); kind {
	case "text":
		ed.Text = text
	default:
		ed.Caption = text
	}
	return in.change(events.TypeMessageEdited, ed)
}

func (in *inbound) revoke() record {
	return in.change(events.TypeMessageDeleted, Deletion{origin: in.o, Message: in.target(in.msg.GetProtocolMessage().GetKey())})
}

func (in *inbound) pollVote() record {
	pu := in.msg.PollUpdateMessage
	v := PollVote{origin: in.o, Message: in.target(pu.GetPollCreationMessageKey()), Options: []string{}}
	if in.cli == nil {
		v.Error = "no client to decrypt the vote"
		return in.change(events.TypePollVote, v)
	}
	dec, err := in.cli.DecryptPollVote(in.ctx, in.m)
	if err != nil {
		in.e.log.Warn("poll vote not decrypted", "session", in.session, "id", in.o.ID, "err", err)
		v.Error = "the vote could not be decrypted (the poll's secret is unknown to this session)"
		return in.change(events.TypePollVote, v)
	}
	names, err := in.pollOptions(v.Message)
	if err != nil {
		in.e.log.Warn("poll of a vote not read", "session", in.session, "id", in.o.ID, "err", err)
	}
	byHash := map[[32]byte]string{}
	for _, n := range names {
		byHash[sha256.Sum256([]byte(n))] = n
	}
	for _, h := range dec.GetSelectedOptions() {
		var k [32]byte
		copy(k[:], h)
		if n, ok := byHash[k]; ok && len(h) == 32 {
			v.Options = append(v.Options, n)
		} else {
			v.Unknown++
		}
	}
	return in.change(events.TypePollVote, v)
}

// pollOptions are the option names of the poll t: from the outbox when
// the poll is one of our sends, else from its message.received (ours from
// another device, or the contact's).
func (in *inbound) pollOptions(t Target) ([]string, error) {
	if t.FromMe {
		var content string
		err := in.e.cfg.DB.QueryRowContext(in.ctx, `SELECT content FROM outbox WHERE id = $1 AND session = $2`, t.ID, in.session).Scan(&content)
		switch {
		case err == nil:
			var c struct {
				Poll struct {
					Options json.RawMessage `json:"options"`
				} `json:"poll"`
			}
			if err := json.Unmarshal([]byte(content), &c); err != nil {
				return nil, err
			}
			return optionNames(c.Poll.Options), nil
		case !errors.Is(err, sql.ErrNoRows):
			return nil, err
		}
	}
	ev, ok, err := in.e.cfg.Events.ByKey(in.ctx, in.session, events.TypeMessageReceived, messageKey(t.Chat, t.From, t.ID))
	if err != nil || !ok {
		return nil, err
	}
	var msg InboundMessage
	if err := json.Unmarshal(ev.Data, &msg); err != nil || msg.Poll == nil {
		return nil, err
	}
	return msg.Poll.Options, nil
}

// optionNames reads a poll's options as the outbox stores them: names, or
// objects with a name.
func optionNames(raw json.RawMessage) []string {
	var names []string
	if json.Unmarshal(raw, &names) == nil {
		return names
	}
	var objs []struct {
		Name       string `json:"name"`
		OptionName string `json:"option_name"`
	}
	json.Unmarshal(raw, &objs)
	for _, o := range objs {
		if o.Name != "" {
			names = append(names, o.Name)
		} else {
			names = append(names, o.OptionName)
		}
	}
	return names
}

// target is the message key points at, in the chat of the message that
// points at it. The key is the sender's: from_me means the message is the
// sender's own; else, in a group, the participant sent it, and in a
// one-to-one chat the other side did (us, or for our own other device the
// contact).
func (in *inbound) target(key *waCommon.MessageKey) Target {
	t := Target{ID: key.GetID(), Chat: in.o.Chat, ChatLID: in.o.ChatLID}
	switch {
	case key.GetFromMe():
		t.From, t.FromLID, t.FromMe = in.o.From, in.o.FromLID, in.o.FromMe
	case in.m.Info.IsGroup:
		if p, err := types.ParseJID(key.GetParticipant()); err == nil && !p.IsEmpty() {
			pn, lid := in.phoneAndLID(p)
			t.From, t.FromLID = pn.String(), lid
			t.FromMe = in.isOwn(pn) || in.isOwn(p)
		}
	case in.o.FromMe:
		t.From, t.FromLID = in.o.Chat, in.o.ChatLID
	default:
		t.FromMe = true
		if own, lid, ok := in.own(); ok {
			t.From, t.FromLID = own, lid
		} else if r, err := types.ParseJID(key.GetRemoteJID()); err == nil {
			pn, lid := in.phoneAndLID(r)
			t.From, t.FromLID = pn.String(), lid
		}
	}
	return t
}

// own is this session's account: its phone-number JID and LID.
func (in *inbound) own() (pn, lid string, ok bool) {
	if in.cli == nil || in.cli.Store == nil || in.cli.Store.ID == nil {
		return "", "", false
	}
	pn = in.cli.Store.ID.ToNonAD().String()
	if l := in.cli.Store.GetLID(); !l.IsEmpty() {
		lid = l.ToNonAD().String()
	}
	return pn, lid, true
}

func (in *inbound) isOwn(j types.JID) bool {
	if in.cli == nil || in.cli.Store == nil || in.cli.Store.ID == nil {
		return false
	}
	return j.User == in.cli.Store.ID.User || j.User == in.cli.Store.GetLID().User
}
