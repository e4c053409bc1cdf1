package api

import (
	"strings"

	"waappliance/whatsapp"
)

// The schemas of what the receive side writes into the event log: a
// message.received per kind (MessageReceived: oneOf with kind as the
// discriminator) and the events that change a message or its media.

func enum(vals ...string) map[string]any { return map[string]any{"type": "string", "enum": vals} }

func desc(schema map[string]any, d string) map[string]any {
	out := map[string]any{"description": d}
	for k, v := range schema {
		out[k] = v
	}
	return out
}

// allOfObj is base extended by an object of props.
func allOfObj(base string, props map[string]any, required ...string) map[string]any {
	return map[string]any{"allOf": []any{ref(base), obj(props, required...)}}
}

// receivedKinds gives each kind of message.received its fields.
var receivedKinds = map[string]struct {
	props    map[string]any
	required []string
}{
	whatsapp.KindText: {map[string]any{"text": str}, []string{"text"}},
	"image":           {map[string]any{"caption": str, "media": ref("InboundMedia")}, []string{"media"}},
	"video":           {map[string]any{"caption": str, "media": ref("InboundMedia")}, []string{"media"}},
	"audio":           {map[string]any{"media": ref("InboundMedia")}, []string{"media"}},
	"document":        {map[string]any{"caption": str, "media": ref("InboundMedia")}, []string{"media"}},
	"sticker":         {map[string]any{"media": ref("InboundMedia")}, []string{"media"}},
	"location":        {map[string]any{"caption": str, "location": ref("Location")}, []string{"location"}},
	"contacts":        {map[string]any{"contacts": map[string]any{"type": "array", "items": ref("ContactCard"), "minItems": 1}}, []string{"contacts"}},
	"poll":            {map[string]any{"poll": ref("Poll")}, []string{"poll"}},
	"unsupported":     {map[string]any{"whatsapp_type": desc(str, "WhatsApp's name of what the message holds (its protobuf field), e.g. eventMessage")}, []string{"whatsapp_type"}},
}

func receivedSchemas(into map[string]any) {
	into["InboundOrigin"] = obj(map[string]any{
		"id": desc(str, "WhatsApp's message id (unique per sender)"), "from": desc(str, "the sender: its phone-number JID when known, else its LID"),
		"chat": desc(str, "the chat: phone-number JID of a one-to-one chat when known, a group JID, …"), "from_lid": str, "chat_lid": str,
		"from_me": desc(boolean, "sent by this session's account (from another of its devices)"), "push_name": str, "timestamp": dateTime},
		"id", "from", "chat", "from_me", "timestamp")
	into["Quoted"] = obj(map[string]any{"id": str, "from": str, "from_lid": str, "kind": str, "text": desc(str, "its text or caption, when the reply carried it")}, "id")
	into["MessageReceivedBase"] = allOfObj("InboundOrigin", map[string]any{
		"reply_to":  desc(str, "the id of the message this one quotes"),
		"quoted":    ref("Quoted"),
		"mentions":  desc(strList, "JIDs the text or caption mentions"),
		"forwarded": boolean, "view_once": boolean})
	into["InboundMedia"] = obj(map[string]any{
		"id":   desc(str, "the media id: GET /v1/media/{id} streams it once ready (409 media_pending before); absent when the appliance has no media store"),
		"type": desc(str, "media type (no parameters), as the sender declared it"), "size": integer,
		"sha256":   desc(str, "hex SHA-256 of the plain bytes, as the sender declared it (the download checks it)"),
		"filename": str, "state": enum("pending", "ready", "failed"), "error": str,
		"seconds": integer, "width": integer, "height": integer, "pages": integer,
		"voice": desc(boolean, "a voice note (push to talk)"), "video_note": desc(boolean, "a round video message"), "animated": boolean},
		"type", "size", "state")
	into["Location"] = obj(map[string]any{"latitude": number, "longitude": number, "name": str, "address": str, "url": str, "live": boolean}, "latitude", "longitude")
	into["ContactCard"] = obj(map[string]any{"name": str, "vcard": str, "phones": desc(strList, "the TEL values of the vCard")}, "vcard")
	into["Poll"] = obj(map[string]any{"question": str, "options": strList, "selectable": desc(integer, "how many options a voter may choose; 0: any number")}, "question", "options", "selectable")
	var oneOf []any
	mapping := map[string]any{}
	for _, kind := range whatsapp.ReceivedKinds {
		k := receivedKinds[kind]
		name := "MessageReceived" + strings.ToUpper(kind[:1]) + kind[1:]
		props := map[string]any{"kind": map[string]any{"type": "string", "const": kind}}
		for p, v := range k.props {
			props[p] = v
		}
		into[name] = allOfObj("MessageReceivedBase", props, append([]string{"kind"}, k.required...)...)
		oneOf = append(oneOf, ref(name))
		mapping[kind] = "#/components/schemas/" + name
	}
	into["MessageReceived"] = map[string]any{"oneOf": oneOf, "discriminator": map[string]any{"propertyName": "kind", "mapping": mapping}}

	into["MessageTarget"] = obj(map[string]any{"id": str, "chat": str, "chat_lid": str,
		"from": desc(str, "its sender: phone-number JID when known, else the LID"), "from_lid": str,
		"from_me": desc(boolean, "sent by this session's account")}, "id", "chat", "from", "from_me")
	changes := func(props map[string]any, required ...string) map[string]any {
		props["message"] = desc(ref("MessageTarget"), "the message this event changes")
		return allOfObj("InboundOrigin", props, append([]string{"message"}, required...)...)
	}
	into["ReactionReceived"] = changes(map[string]any{"emoji": desc(str, `the reaction; "" removes the sender's earlier reaction`)}, "emoji")
	into["MessageEdited"] = changes(map[string]any{"text": desc(str, "the new text of a text message"), "caption": desc(str, "the new caption of a media message"), "edited_at": dateTime})
	into["MessageDeleted"] = changes(map[string]any{})
	into["PollVote"] = changes(map[string]any{
		"options":         desc(strList, "the names of the options the voter chose now (none: the vote was withdrawn); replaces the voter's earlier vote"),
		"unknown_options": desc(integer, "chosen options the appliance could not name (the poll is no longer in the outbox or the event log)"),
		"error":           desc(str, "why the vote could not be read at all")}, "options")
	media := map[string]any{"id": desc(str, "the media id (GET /v1/media/{id})"), "kind": str, "message": desc(ref("MessageTarget"), "the message the media came with"),
		"type": str, "size": integer, "sha256": str, "filename": str}
	// media.ready tells what the store learned of the bytes, where it could.
	ready := map[string]any{"size": desc(integer, "bytes, as stored"), "sha256": desc(str, "hex SHA-256 of the bytes, as stored"),
		"width": desc(integer, "pixels, of images (JPEG, PNG, GIF, WebP)"), "height": desc(integer, "pixels, as width"),
		"seconds": desc(integer, "duration of Ogg and M4A audio and of MP4/3GP/QuickTime video")}
	failed := map[string]any{"reason": desc(str, "why the download failed, after a media retry when the link had expired")}
	for k, v := range media {
		if _, ok := ready[k]; !ok {
			ready[k] = v
		}
		failed[k] = v
	}
	into["MediaReady"] = obj(ready, "id", "kind", "message", "type", "size", "sha256")
	into["MediaFailed"] = obj(failed, "id", "kind", "message", "reason")
}
