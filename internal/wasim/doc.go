// Package wasim is an offline WhatsApp server simulator that an unmodified
// go.mau.fi/whatsmeow client connects to, so the WhatsApp half of the
// appliance is tested for real: the client's own Noise handshake, pairing,
// Signal encryption and receipts run against it.
//
// # Using it in a test
//
//	srv, _ := wasim.New(ctx, wasim.Options{InMemory: true}) // or loopback TCP
//	defer srv.Close()
//	cli := whatsmeow.NewClient(device, log)
//	srv.Prepare(cli)                           // http clients + WACertPubKey
//	qr, _ := cli.GetQRChannel(ctx); cli.Connect()
//	srv.Phone("+15550001").ScanQR((<-qr).Code) // pair-success, 515, login
//	ct, _ := srv.Contact("+15550002")          // a simulated contact
//	cli.SendMessage(ctx, ct.JID(), msg)        // ct.Inbox() has it, decrypted
//	ct.Send(ctx, account, "hi")                // the client gets events.Message
//	ct.SendMedia(ctx, account, wasim.Media{Kind: wasim.KindDocument, Data: pdf, Filename: "a.pdf"})
//
// Prepare sets whatsmeow.WACertPubKey, a process-wide variable, to the
// simulator's root key: a process that uses wasim must not talk to the real
// WhatsApp at the same time. The appliance installs it only in sandbox mode.
//
// The http.Client that Prepare (and HTTPClient) hands out reaches wasim
// whatever host a request names, websocket and media alike: over loopback
// TCP, or with Options.InMemory over a connected socket pair
// (socketpair(2)) that nothing listens for, so an in-process wasim opens no
// network socket on the host; the appliance's sandbox mode runs it so. A
// standalone wasim (cmd/wasim) listens on loopback TCP, with its control API.
//
// # What it simulates
//
// The Noise XX handshake with a certificate chain whose certificates carry a
// validity window (which clients check); QR pairing with the ADV signed
// device identity (account signature, HMAC, device signature) and the 515
// restart, from either QR text (the bare fields, or the
// https://wa.me/settings/linked_devices# link with the client type that
// current clients show); phone-code pairing (PairPhone, then
// Phone.EnterCode); login with <success>, <failure 401>, or during a
// temporary ban (Server.TemporaryBan: the account's connections dropped,
// each login until the expiry answered with <failure reason="402" code
// expire>, which whatsmeow reports as events.TemporaryBan); LIDs: every
// account has one (Phone.LID, Contact.LID; derived from the number, so a
// restarted wasim gives the same), which pair-success and <success> carry
// and usync answers (<lid/> queries; "on WhatsApp" checks with the LID and
// pn_jid beside it, as for addressing_mode "lid"), and device lists and
// prekey bundles asked for by LID are answered by LID; the prekey count,
// upload and bundle fetch; usync device lists; the other iqs answered with
// plausible empty results (privacy token issuance included); one-to-one
// messages, addressed by LID (as current clients send them) or by phone
// number, Signal-encrypted by the client and decrypted by the contact
// (pkmsg, then msg once the contact has answered); server acks with a
// timestamp; the server's de-duplication of a message id that the same
// device sends again (a client resending after a lost ack): acked again with
// the first timestamp, not delivered again, counted by Resends and the
// inbox's "resends" (a resend that a retry receipt asked for is no
// duplicate); delivered and read receipts, from the address form the client
// sent to; contacts sending every kind (Contact.SendKind; the node's type
// and edit attributes as WhatsApp sets them) from their LID with their
// phone number beside it (sender_pn) as WhatsApp does, or from
// their number with the LID beside it (sender_lid; Contact.SetAddressing),
// queued while the client is offline and redelivered until the client acks
// them, and sent once more on demand after the ack (Contact.Resend: same id
// and timestamp, encrypted anew, which a client can only de-duplicate by
// id); retry receipts (a contact resends a message the client could not
// decrypt: on its session, then on a new one from the receipt's keys or a
// fresh bundle; it keeps its last 1000 sent messages for this, in memory
// only); a first message the client cannot decrypt until its retry receipt
// is answered (Contact.SendUndecryptable, the lost first message of a new
// contact), or, when the contact ignores retries (Contact.IgnoreRetries),
// until the client's own phone answers its placeholder resend request
// (whatsmeow's AutomaticMessageRerequestFromPhone); the phone's Signal
// session with each companion, opened at its first login with a protocol
// message nothing acts on, on which the phone decrypts the copies and peer
// messages a client sends it; a contact asking the client for a message
// again (Contact.RequestRetry: a retry receipt the client must answer from
// what it still has, after a restart from GetMessageForRetry); media of
// every kind both ways — images, videos, round video notes (PtvMessage),
// audio, voice notes (PTT, audio/ogg; codecs=opus), documents (file name,
// caption) and stickers — encrypted under whatsmeow's key info for the kind
// (stickers under the image keys): media_conn points at wasim, which
// streams encrypted uploads to files in a temporary directory (up to 2 GB,
// WhatsApp's document limit; removed on Close) and serves downloads (with
// Range); a contact decrypts what the client uploaded (Contact.Media,
// checking both hashes) and sends media it encrypted itself
// (Contact.SendMedia); locations and contact cards (one, or several as a
// ContactsArrayMessage) both ways; polls both ways with their message
// secret, and votes encrypted as WhatsApp does (HKDF of the poll secret with
// the poll id, its creator and the voter, "Poll Vote"; AES-GCM; SHA-256
// option hashes): the contact's votes open with whatsmeow's DecryptPollVote
// and the client's with Contact.PollVote, in either address form;
// reactions to either side's messages (FromMe set for the contact's own),
// and their removal; edits and revokes of the contact's own messages
// (Contact.Edit, Contact.Revoke: what BuildEdit and BuildRevoke make, with
// the contact as sender), and the client's reaching the contact's inbox;
// the client's read receipts (MarkRead; each id recorded per contact,
// Contact.ReadReceipts) and chat presence (SendChatPresence: composing,
// composing with media audio = recording, paused; Contact.ChatPresence);
// expired media (Faults.ExpiredMedia: what contacts sent answers 410 until
// the client sends a media retry receipt, which the account's phone
// decrypts, then re-uploads the file under a new direct path and answers
// with the encrypted mediaretry notification that
// DecryptMediaRetryNotification opens: SUCCESS, DECRYPTION_ERROR for a
// wrong key, or error code 2 for a message it does not have); stream
// errors 401 (device removed), 440 (replaced) and dropped connections,
// with a 2 s grace for the client to hang up first;
// faults: refuse connections, a temporary ban (TemporaryBan, above), fail
// sends with an error code (FailSends),
// delay acks (DelayAcks), lose sends whole (DropSends: nothing delivered,
// nothing acked), and lose only the ack (WithholdAcks: delivered, never
// acked), and expired media (above). State (accounts, linked devices,
// contacts, Signal keys) can live in a SQLite file (Options.DBPath) so a
// standalone wasim (cmd/wasim) survives restarts; its control API
// (ControlHandler, Dial) drives it, faults and every kind a contact sends
// included, from another process, and lists a contact's inbox by kind
// (media by the SHA-256 of the bytes the contact decrypted).
//
// # What it does not simulate
//
// Groups, broadcast lists, status, newsletters, calls, app state sync and
// history sync (the phone shares no app state keys and no history),
// presence beyond one-to-one chat states (the client's <presence>
// available/unavailable and presence subscriptions are read and ignored;
// contacts send no chat states or presence of their own), played receipts
// of voice notes (acked, not recorded), LID addressing beyond one-to-one
// chats (LID groups, an account's LID changing, hosted and username
// accounts, the LID-PN mappings a history sync carries), retry receipts a
// contact sends on its own (one that cannot decrypt logs it; RequestRetry
// sends one on demand), the phone acting on what a client sends it other
// than placeholder resend requests and media retry receipts (its copies of
// sent messages are decrypted and dropped), re-uploads of media the client
// itself sent (a media retry receipt for one is answered "not available"),
// media after a restart (uploads live in a temporary directory, not in the
// state file), the media server's checks (upload tokens, auth and hashes
// are not verified; DELETE of media is not served; media_conn names one
// host), anything about media content (types, thumbnails, durations and
// waveforms are passed through as the sender gave them; contacts send no
// thumbnail unless told), view-once, GIFs, disappearing messages and the
// other wrappers (a client's DocumentWithCaptionMessage is read; none is
// produced), edit
// and revoke windows (any message the contact sent may be edited or
// revoked; its edits carry new text only), poll edits, added options and
// encrypted (community) reactions, privacy tokens (issuance is acked, no
// token is given or checked), business features, rate limits, permanent
// bans, WhatsApp's real window for de-duplication (wasim remembers the
// newest 10,000 sends, in memory only, so a standalone wasim forgets them
// when it restarts; a contact keeps its last 1000 sent messages, and the
// polls it knows, in memory only), faults other than those above (a
// connection that hangs without closing, corrupted frames, delivery to
// some of a contact's devices and not others), and anything about
// WhatsApp's real servers beyond what the client checks. It is a test
// double, not WhatsApp.
package wasim
