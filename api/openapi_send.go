package api

import "waappliance/whatsapp"

// The send side of the OpenAPI document: one request schema per content
// kind (SendRequest is their oneOf: exactly one content field), the kind
// bodies they share with the Message answer, and Message as a oneOf with
// kind as its discriminator.

func msgID(what string) map[string]any {
	return map[string]any{"type": "string", "description": "the id the API showed of the message to " + what +
		": one of ours (a send's id) or a received one (message.received's id) of this chat; 404 not_found when this session has no such message in this chat"}
}

func mediaID(extra string) map[string]any {
	return map[string]any{"type": "string", "description": "the id POST /v1/media answered; the item must be ready and the calling peer's upload, or media received in this session (404 not_found otherwise, 409 media_pending while it downloads); its type must fit the kind (400)" + extra}
}

var caption = map[string]any{"type": "string", "description": "shown under the media; at most 4 KiB"}

// kindBodies are the JSON bodies of each kind's field (text is a string).
var kindBodies = map[string]any{
	whatsapp.KindImage: obj(map[string]any{"media": mediaID(": image/jpeg or image/png"), "caption": caption}, "media"),
	whatsapp.KindVideo: obj(map[string]any{"media": mediaID(": video/mp4 or video/3gpp"), "caption": caption,
		"video_note": map[string]any{"type": "boolean", "description": "send as a round video note (no caption)"}}, "media"),
	whatsapp.KindAudio: obj(map[string]any{"media": mediaID(": audio/ogg, audio/mpeg, audio/mp4, audio/aac or audio/amr"),
		"voice": map[string]any{"type": "boolean", "description": "send as a voice note (push to talk); Ogg/Opus is what WhatsApp records"}}, "media"),
	whatsapp.KindDocument: obj(map[string]any{"media": mediaID(": any type"), "caption": caption,
		"filename": map[string]any{"type": "string", "description": "the name shown; default the one it was uploaded with"}}, "media"),
	whatsapp.KindSticker: obj(map[string]any{"media": mediaID(": image/webp")}, "media"),
	whatsapp.KindLocation: obj(map[string]any{
		"latitude":  map[string]any{"type": "number", "minimum": -90, "maximum": 90},
		"longitude": map[string]any{"type": "number", "minimum": -180, "maximum": 180},
		"name":      str, "address": str}, "latitude", "longitude"),
	whatsapp.KindContacts: map[string]any{"type": "array", "minItems": 1, "maxItems": 50, "items": map[string]any{"oneOf": []any{
		obj(map[string]any{"vcard": map[string]any{"type": "string", "description": "a vCard, BEGIN:VCARD … END:VCARD with an FN line"}}, "vcard"),
		obj(map[string]any{"name": str, "phones": map[string]any{"type": "array", "items": str, "minItems": 1, "maxItems": 10,
			"description": "E.164 numbers; the appliance builds a vCard 3.0 with WhatsApp's waid"}}, "name", "phones"),
	}}},
	whatsapp.KindPoll: obj(map[string]any{"question": str,
		"options":    map[string]any{"type": "array", "items": str, "minItems": 2, "maxItems": 12, "uniqueItems": true},
		"selectable": map[string]any{"type": "integer", "minimum": 0, "description": "how many options a voter may choose: 1 for one, up to the number of options; 0 for any number"}},
		"question", "options"),
	whatsapp.KindReaction: obj(map[string]any{"message": msgID("react to"),
		"emoji": map[string]any{"type": "string", "description": "one emoji; \"\" takes the reaction back"}}, "message", "emoji"),
	whatsapp.KindEdit: obj(map[string]any{"message": msgID("edit (ours only: 409 not_own_message; within 15 minutes: 409 edit_window_passed; text or a caption: 409 wrong_message_kind)"),
		"text": map[string]any{"type": "string", "minLength": 1, "description": "the new text or caption"}}, "message", "text"),
	whatsapp.KindDelete: obj(map[string]any{"message": msgID("delete for everyone (ours only: 409 not_own_message; within 60 hours: 409 delete_window_passed)")}, "message"),
}

var textField = map[string]any{"type": "string", "minLength": 1, "maxLength": whatsapp.MaxTextBytes, "description": "the text; at most 16 KiB (UTF-8 bytes); 413 above"}

func kindTitle(k string) string { return string(k[0]-'a'+'A') + k[1:] }

func sendSchemas(into map[string]any) {
	to := map[string]any{"type": "string", "description": "E.164 phone number (+4915123456789), a phone-number JID (…@s.whatsapp.net) or a LID (…@lid)"}
	replyTo := map[string]any{"type": "string", "description": "quote a message of this chat by the id the API showed: one of ours (a send's id) or a received one (message.received's id); " +
		"the appliance finds its sender itself; 404 not_found when this session has no such message in this chat. Not with reaction, edit or delete"}
	var sends, messages []any
	mapping := map[string]any{}
	for _, k := range whatsapp.Kinds {
		props := map[string]any{"to": to, "reply_to": replyTo}
		if k == whatsapp.KindText {
			props["text"] = textField
			props["mentions"] = map[string]any{"type": "array", "items": str, "description": "E.164 numbers mentioned; each must appear in the text as @<digits> (or @+<digits>, sent as @<digits>)"}
			props["link_preview"] = map[string]any{"type": "boolean", "description": "not supported: only false is accepted"}
		} else {
			into["Send"+kindTitle(k)+"Body"] = kindBodies[k]
			props[k] = ref("Send" + kindTitle(k) + "Body")
		}
		if k == whatsapp.KindReaction || k == whatsapp.KindEdit || k == whatsapp.KindDelete {
			delete(props, "reply_to")
		}
		name := "Send" + kindTitle(k)
		s := obj(props, "to", k)
		s["additionalProperties"] = false
		into[name] = s
		sends = append(sends, ref(name))

		mprops := map[string]any{"kind": map[string]any{"type": "string", "const": k}}
		if k == whatsapp.KindText {
			mprops["text"], mprops["mentions"] = str, strList
		} else {
			mprops[k] = ref("Send" + kindTitle(k) + "Body")
		}
		mname := "Message" + kindTitle(k)
		into[mname] = map[string]any{"allOf": []any{ref("MessageCommon"), obj(mprops, "kind", k)}}
		messages = append(messages, ref(mname))
		mapping[k] = "#/components/schemas/" + mname
	}
	into["SendRequest"] = map[string]any{"oneOf": sends,
		"description": "to, optionally reply_to, and exactly one content field (400 naming the fields otherwise)"}
	into["MessageCommon"] = obj(map[string]any{"id": str, "session": str, "to": str, "recipient_lid": str, "reply_to": str,
		"kind":     map[string]any{"type": "string", "enum": whatsapp.Kinds},
		"status":   map[string]any{"type": "string", "enum": []string{"queued", "sent", "delivered", "read", "failed"}},
		"attempts": integer, "error": str, "server_timestamp": dateTime, "created_at": dateTime, "updated_at": dateTime,
		"history": map[string]any{"type": "array", "items": obj(map[string]any{"status": str, "at": dateTime, "detail": str})}}, "id", "kind", "status")
	into["Message"] = map[string]any{"oneOf": messages,
		"discriminator": map[string]any{"propertyName": "kind", "mapping": mapping}}
	into["ChatRead"] = obj(map[string]any{"ids": map[string]any{"type": "array", "items": str, "minItems": 1, "maxItems": 100,
		"description": "ids of messages this session received in the chat (message.received's id); 404 for any other"}}, "ids")
	into["ChatReadDone"] = obj(map[string]any{"chat": str, "read": strList}, "chat", "read")
	into["ChatPresence"] = obj(map[string]any{"state": map[string]any{"type": "string", "enum": []string{whatsapp.PresenceTyping, whatsapp.PresenceRecording, whatsapp.PresencePaused}}}, "state")
	into["ChatPresenceDone"] = obj(map[string]any{"chat": str, "state": str}, "chat", "state")
}
