package whatsapp

import (
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// mediaSource is what the downloader needs of a received message's media,
// kept with its pending media item (media.Reservation.Source, JSON): the
// blob's path and keys, and the message, for a media retry receipt when
// the path has expired. It holds the media key: never logged.
type mediaSource struct {
	Kind          string `json:"kind"`
	DirectPath    string `json:"direct_path"`
	MediaKey      []byte `json:"media_key"`
	FileSHA256    []byte `json:"file_sha256"`
	FileEncSHA256 []byte `json:"file_enc_sha256"`
	Length        int64  `json:"length"`
	MediaType     string `json:"media_type"` // whatsmeow.MediaType: the HKDF info of the keys
	// The message (a media retry receipt names it).
	ID      string `json:"id"`
	Chat    string `json:"chat"`
	Sender  string `json:"sender"`
	FromMe  bool   `json:"from_me"`
	IsGroup bool   `json:"is_group"`
	// Message is the message.received the media came with, as its event
	// names it (media.ready and media.failed point at it).
	Message Target `json:"message"`
	// Retries counts the media retry receipts sent for this item.
	Retries int `json:"retries,omitempty"`
}

// source is the download source of m, the media of the message in.
func (in *inbound) source(kind string, m mediaMessage, mt whatsmeow.MediaType) *mediaSource {
	info := in.m.Info
	return &mediaSource{Kind: kind, DirectPath: m.GetDirectPath(), MediaKey: m.GetMediaKey(), FileSHA256: m.GetFileSHA256(),
		FileEncSHA256: m.GetFileEncSHA256(), Length: int64(m.GetFileLength()), MediaType: string(mt),
		ID: info.ID, Chat: info.Chat.String(), Sender: info.Sender.String(), FromMe: info.IsFromMe, IsGroup: info.IsGroup}
}

// messageInfo is the message of s as whatsmeow's media retry wants it.
func (s *mediaSource) messageInfo() (*types.MessageInfo, error) {
	chat, err := types.ParseJID(s.Chat)
	if err != nil {
		return nil, err
	}
	sender, err := types.ParseJID(s.Sender)
	if err != nil {
		return nil, err
	}
	return &types.MessageInfo{ID: s.ID, MessageSource: types.MessageSource{Chat: chat, Sender: sender, IsFromMe: s.FromMe, IsGroup: s.IsGroup}}, nil
}
