package api

import (
	"net/http"
	"strings"
	"sync"

	"waappliance/events"
	"waappliance/media"
)

// op documents one route. The document is written by hand, apart from the
// router, so that TestOpenAPICoversRoutes catches a route nobody documented.
type op struct {
	summary  string
	scope    string
	request  string // component schema name of the JSON body, "" for none
	response string // component schema name of the success body
	status   string // success status, default "200"
	query    []string
	// stream: the success response is text/event-stream whose data lines
	// are the response schema (Event), not JSON.
	stream bool
	// rawRequest lists the media types of a raw (not JSON) request body;
	// rawResponse says the success body is the bytes themselves.
	rawRequest  []string
	rawResponse string
	// errors adds or overrides error answers of this operation.
	errors map[string]string
}

var operations = map[string]op{
	"GET /v1/health":               {summary: "Liveness and version; any peer", response: "Health"},
	"GET /v1/whoami":               {summary: "The calling peer, as identified by its WireGuard key", response: "Whoami"},
	"GET /v1/openapi.json":         {summary: "This document", response: "Object"},
	"GET /v1/peers":                {summary: "All peers with device statistics", scope: "admin", response: "PeerList"},
	"POST /v1/peers":               {summary: "Add a peer; the private key (when generated) is in this response only", scope: "admin", request: "PeerCreate", response: "PeerCreated", status: "201"},
	"GET /v1/peers/{name}":         {summary: "One peer with device statistics", scope: "admin", response: "Peer"},
	"PATCH /v1/peers/{name}":       {summary: "Change scopes, sessions, limits, expiry or disabled", scope: "admin", request: "PeerUpdate", response: "Peer"},
	"DELETE /v1/peers/{name}":      {summary: "Remove a peer; its key stops working and its connections close", scope: "admin", status: "204"},
	"POST /v1/peers/{name}/rotate": {summary: "New generated key; the old one stops working", scope: "admin", response: "PeerCreated"},
	"GET /v1/peers/{name}/config":  {summary: "The wg-quick config with a private key placeholder (JSON, text/plain or image/png QR)", scope: "admin", response: "PeerConfig"},
	"GET /v1/audit":                {summary: "Mutating requests, oldest first", scope: "admin", response: "AuditList", query: []string{"peer", "after", "limit"}},
	"GET /v1/settings":             {summary: "The appliance's settings (never its private key)", scope: "admin", response: "Settings"},
	"PATCH /v1/settings":           {summary: "Change the endpoint, the listen port (from the next start), the default rate and burst, the API host names, or whether status updates are recorded (status_broadcasts); absent fields stay. The subnet and the MTU are fixed at init", scope: "admin", request: "SettingsUpdate", response: "Settings"},

	"POST /v1/sessions":                                 {summary: "Create a WhatsApp session (state new)", scope: "sessions", request: "SessionCreate", response: "Session", status: "201"},
	"GET /v1/sessions":                                  {summary: "Sessions on this peer's allow-list", scope: "read", response: "SessionList"},
	"GET /v1/sessions/{session}":                        {summary: "One session: state, JID, push name, last connected, last error", scope: "read", response: "Session"},
	"DELETE /v1/sessions/{session}":                     {summary: "Log out and remove the session, its device keys and its outbox", scope: "sessions", status: "204"},
	"POST /v1/sessions/{session}/login":                 {summary: "Start QR pairing; poll /qr for the code. On a replaced session: take the connection back (no pairing)", scope: "sessions", response: "Session", status: "202"},
	"GET /v1/sessions/{session}/qr":                     {summary: "Current QR code (JSON, or a PNG with Accept: image/png); 409 when not pairing", scope: "sessions", response: "QR"},
	"POST /v1/sessions/{session}/pair-code":             {summary: "Link by phone number: returns the 8-character code to type on the phone", scope: "sessions", request: "PairCodeRequest", response: "PairCode"},
	"POST /v1/sessions/{session}/logout":                {summary: "Unlink the device at WhatsApp; the session row stays", scope: "sessions", response: "Session"},
	"POST /v1/sessions/{session}/messages":              {summary: "Queue a message of one kind (text, media, location, contacts, poll, reaction, edit, delete), optionally a reply; 202 only after it is committed to the outbox. Optional Idempotency-Key header: the same key with the same body answers 200 with the original, with another body 422", scope: "send", request: "SendRequest", response: "Message", status: "202"},
	"GET /v1/sessions/{session}/messages/{id}":          {summary: "A sent message's content, status and history", scope: "read", response: "Message"},
	"POST /v1/sessions/{session}/chats/{chat}/read":     {summary: "Mark messages received in the chat (a phone number or JID) read; not queued: 409 not_connected while the session is not connected", scope: "send", request: "ChatRead", response: "ChatReadDone"},
	"POST /v1/sessions/{session}/chats/{chat}/presence": {summary: "Show typing, recording (a voice note) or paused in the chat; not queued: 409 not_connected while the session is not connected", scope: "send", request: "ChatPresence", response: "ChatPresenceDone"},
	"GET /v1/events":                                    {summary: "Events in order after the cursor; 410 when the cursor is older than retention", scope: "read", response: "EventList", query: []string{"session", "after", "limit"}},
	"GET /v1/events/stream":                             {summary: "Server-Sent Events with id: lines; resumes from Last-Event-ID; heartbeat comments every 15 s", scope: "read", response: "Event", query: []string{"session", "after"}, stream: true},

	"POST /v1/webhooks":                    {summary: "Subscribe this peer to events at a URL on its own tunnel address (http://<its address>[:port]/path); the secret is in this response only", scope: "read", request: "WebhookCreate", response: "WebhookCreated", status: "201"},
	"GET /v1/webhooks":                     {summary: "This peer's webhooks (an admin's: every peer's)", scope: "read", response: "WebhookList"},
	"GET /v1/webhooks/{id}":                {summary: "One webhook: state, lag, last success, last error and status, next attempt", scope: "read", response: "Webhook"},
	"DELETE /v1/webhooks/{id}":             {summary: "Remove a webhook; its delivery stops", scope: "read", status: "204"},
	"POST /v1/webhooks/{id}/enable":        {summary: "Enable; delivery resumes from the cursor with a fresh attempt count", scope: "read", response: "Webhook"},
	"POST /v1/webhooks/{id}/disable":       {summary: "Disable; the cursor stays", scope: "read", response: "Webhook"},
	"POST /v1/webhooks/{id}/rotate-secret": {summary: "New secret (in this response only); the old one keeps signing alongside it for 24 h", scope: "read", response: "WebhookCreated"},
	"POST /v1/webhooks/{id}/test":          {summary: "Send one webhook.test event now, outside the log and the cursor, and report the answer", scope: "read", response: "WebhookTest"},
	"POST /v1/webhooks/{id}/rewind":        {summary: "Replay from a cursor: events after `after` are delivered again; 410 when it is older than retention", scope: "read", request: "WebhookRewind", response: "Webhook"},

	"POST /v1/media": {summary: "Upload media: the raw bytes as the body, their media type as Content-Type (checked against the content's own signature), Content-Length required. " +
		"Per-kind limits: image 16 MiB, sticker 1 MiB, audio 16 MiB, video 64 MiB, document 2 GiB; under the quota (--media-max-bytes) the oldest media no queued message needs is evicted. " +
		"Optional file name: ?filename= or Content-Disposition: attachment; filename=…. 201 only once the bytes are durable; sends name the item by its id",
		scope: "send", response: "MediaItem", status: "201", query: []string{"filename"}, rawRequest: media.Accepted(), errors: mediaErrors},
	"GET /v1/media/{id}": {summary: "The bytes of a media item (an upload of this peer, or inbound media of a session on its allow-list), with its media type; Range and If-None-Match (ETag: the SHA-256) work; documents are attachments with their file name. " +
		"409 media_pending until inbound media is downloaded (media.ready says when), 410 media_failed when it could not be",
		scope: "read", rawResponse: "the item's media type", errors: mediaErrors},
	"GET /v1/media/{id}/thumbnail": {summary: "The item's thumbnail: a JPEG of at most 96 px on its longer side, made for JPEG, PNG and GIF images; 404 no_thumbnail for others", scope: "read", rawResponse: "image/jpeg", errors: mediaErrors},
	"GET /v1/media/{id}/info":      {summary: "A media item's metadata in any state: type, size, SHA-256, file name, state, error, dimensions, duration", scope: "read", response: "MediaItem", errors: mediaErrors},

	"POST /v1/sandbox/scan":                      {summary: "Sandbox only: complete a pending QR pairing as a simulated phone", scope: "admin", request: "SandboxScan", response: "Object"},
	"POST /v1/sandbox/contacts":                  {summary: "Sandbox only: create a simulated contact", scope: "admin", request: "SandboxContact", response: "SandboxContact", status: "201"},
	"POST /v1/sandbox/contacts/{phone}/messages": {summary: "Sandbox only: the contact sends a session a message of one kind (text, media inline, location, contacts, poll, reaction, edit, delete, vote)", scope: "admin", request: "SandboxSend", response: "Object", status: "202"},
	"GET /v1/sandbox/contacts/{phone}/inbox":     {summary: "Sandbox only: what the contact received, decrypted", scope: "admin", response: "SandboxInbox"},
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func obj(props map[string]any, required ...string) map[string]any {
	m := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		m["required"] = required
	}
	return m
}

var (
	str      = map[string]any{"type": "string"}
	integer  = map[string]any{"type": "integer"}
	number   = map[string]any{"type": "number"}
	boolean  = map[string]any{"type": "boolean"}
	dateTime = map[string]any{"type": "string", "format": "date-time"}
	strList  = map[string]any{"type": "array", "items": str}
	nullTime = map[string]any{"type": []string{"string", "null"}, "format": "date-time"}
	// capInt is a per-peer cap: null (in views) or 0 (in requests) means
	// the appliance's default.
	capInt = map[string]any{"type": []string{"integer", "null"}, "minimum": 0}
)

var schemas = map[string]any{
	"Object": map[string]any{"type": "object"},
	"Error": obj(map[string]any{"error": obj(map[string]any{
		"code": str, "message": str, "request_id": str}, "code", "message", "request_id")}, "error"),
	"Health": obj(map[string]any{"status": str, "version": str, "sandbox": boolean,
		"whatsapp_web_version": obj(map[string]any{"in_use": str, "built_in": str,
			"source":     map[string]any{"type": "string", "enum": []string{"built-in", "web.whatsapp.com"}},
			"checked_at": dateTime, "error": str}, "in_use", "built_in", "source")}, "status", "version"),
	"Peer": obj(map[string]any{
		"name": str, "public_key": str, "address": str, "scopes": strList, "sessions": strList,
		"rate": number, "burst": integer, "send_per_minute": integer, "expires_at": nullTime, "disabled": boolean,
		"max_conns": capInt, "max_streams": capInt, "webhooks_external": boolean,
		"state":      map[string]any{"type": "string", "enum": []string{"enabled", "disabled", "expired"}},
		"created_at": dateTime, "updated_at": dateTime,
		"last_handshake": dateTime, "rx_bytes": integer, "tx_bytes": integer, "connected": boolean,
	}, "name", "public_key", "address", "scopes"),
	"Whoami":   map[string]any{"allOf": []any{ref("Peer"), obj(map[string]any{"sandbox": boolean})}},
	"PeerList": obj(map[string]any{"peers": map[string]any{"type": "array", "items": ref("Peer")}}, "peers"),
	"PeerCreate": obj(map[string]any{
		"name": str, "scopes": strList, "public_key": str, "rate": number, "burst": integer, "send_per_minute": integer,
		"max_conns": capInt, "max_streams": capInt,
		"expires_in": str, "expires_at": dateTime, "sessions": strList, "webhooks_external": boolean}, "name"),
	"PeerUpdate": obj(map[string]any{
		"scopes": strList, "sessions": strList, "rate": number, "burst": integer, "send_per_minute": integer,
		"max_conns": capInt, "max_streams": capInt,
		"expires_in": str, "expires_at": nullTime, "disabled": boolean, "webhooks_external": boolean}),
	"PeerCreated":   obj(map[string]any{"peer": ref("Peer"), "config": str, "private_key": str, "warning": str}, "peer", "config"),
	"PeerConfig":    obj(map[string]any{"name": str, "config": str}, "name", "config"),
	"SessionCreate": obj(map[string]any{"name": str}, "name"),
	"Session": obj(map[string]any{"name": str,
		"state": map[string]any{"type": "string", "enum": []string{"new", "pairing", "connecting", "connected", "disconnected", "logged_out", "replaced", "temporarily_banned"}},
		"jid":   str, "push_name": str, "last_connected_at": nullTime, "last_error": str, "created_at": dateTime,
		"ban_expires_at": dateTime}, "name", "state"),
	"SessionList":     obj(map[string]any{"sessions": map[string]any{"type": "array", "items": ref("Session")}}, "sessions"),
	"QR":              obj(map[string]any{"code": str, "expires_at": dateTime}, "code", "expires_at"),
	"PairCodeRequest": obj(map[string]any{"phone": str}, "phone"),
	"PairCode":        obj(map[string]any{"code": str, "session": str}, "code"),
	"EventList":       obj(map[string]any{"events": map[string]any{"type": "array", "items": ref("Event")}, "next_after": integer}, "events"),
	"MessageStatus": obj(map[string]any{"id": str,
		"status":        map[string]any{"type": "string", "enum": []string{"sent", "delivered", "read", "failed"}},
		"error":         str,
		"recipient_lid": desc(str, "the recipient's LID, where the appliance knows it (as the message's recipient_lid)")}, "id", "status"),
	"SessionState": obj(map[string]any{
		"state":    map[string]any{"type": "string", "enum": []string{"new", "pairing", "connecting", "connected", "disconnected", "logged_out", "replaced", "temporarily_banned", "deleted"}},
		"previous": str, "error": str}, "state"),
	"LoggedOut":         obj(map[string]any{"reason": str, "on_connect": boolean}, "reason"),
	"TemporarilyBanned": obj(map[string]any{"code": integer, "reason": str, "expires_at": dateTime}, "code", "reason"),
	"MessageUndecryptable": obj(map[string]any{"id": str, "from": str, "chat": str, "from_lid": str, "chat_lid": str, "from_me": boolean,
		"timestamp": dateTime, "is_unavailable": boolean,
		"reason": map[string]any{"type": "string", "description": "decrypt_failed, unavailable, or unavailable_<type> (unavailable_view_once never follows)"}},
		"id", "from", "chat", "is_unavailable", "reason"),
	"SandboxScan":    obj(map[string]any{"session": str, "phone": str}, "session", "phone"),
	"SandboxContact": obj(map[string]any{"phone": str, "name": str, "read_after": map[string]any{"type": "string", "description": "duration such as 2s, or never"}}, "phone"),
	"SandboxSend":    sandboxSendSchema,
	"SandboxInbox":   sandboxInboxSchema,
	"Settings": obj(map[string]any{"public_key": str, "tunnel_address": str, "subnet": str, "listen_port": integer, "mtu": integer,
		"endpoint": str, "default_rate": number, "default_burst": integer,
		"api_hosts":         map[string]any{"type": "array", "items": str, "description": "host names or IP literals (no ports) besides the tunnel address that a request's Host may name"},
		"status_broadcasts": map[string]any{"type": "boolean", "description": "status updates (status@broadcast) are recorded as message.received; off by default"}},
		"tunnel_address", "api_hosts"),
	"SettingsUpdate": obj(map[string]any{
		"endpoint":          map[string]any{"type": "string", "description": "HOST:PORT clients dial, in configs rendered from now on; \"\" clears it"},
		"listen_port":       map[string]any{"type": "integer", "minimum": 1, "maximum": 65535, "description": "WireGuard UDP port, used from the next start"},
		"default_rate":      map[string]any{"type": "number", "description": "requests/second of peers added from now on without their own"},
		"default_burst":     map[string]any{"type": "integer", "minimum": 1, "description": "burst of peers added from now on without their own"},
		"api_hosts":         map[string]any{"type": "array", "items": str, "description": "replaces the list; [] clears it"},
		"status_broadcasts": map[string]any{"type": "boolean", "description": "record status updates (status@broadcast) as message.received from now on (default false: left out)"}}),
	"WebhookCreate": obj(map[string]any{"url": map[string]any{"type": "string", "description": "http://<the peer's own tunnel address>[:port]/path; no other address is accepted"},
		"events":   map[string]any{"type": "array", "items": str, "description": "event types, or [\"*\"] (the default) for all"},
		"sessions": map[string]any{"type": "array", "items": str, "description": "sessions (within the peer's allow-list); [] for all it may read"},
		"peer":     map[string]any{"type": "string", "description": "admin only: subscribe for this peer (its address is then the one the url must name)"}}, "url"),
	"Webhook": obj(map[string]any{"id": integer, "peer": str, "url": str, "events": strList, "sessions": strList,
		"state": map[string]any{"type": "string", "enum": []string{"enabled", "disabled"}}, "disabled_reason": str,
		"cursor": integer, "attempts": integer, "next_attempt_at": dateTime, "last_success_at": dateTime, "last_error": str, "last_status": integer,
		"previous_secret_until": dateTime, "created_at": dateTime, "updated_at": dateTime,
		"lag": obj(map[string]any{"events": integer, "oldest_at": dateTime, "oldest_age_seconds": number})}, "id", "peer", "url", "state", "cursor"),
	"WebhookCreated": map[string]any{"allOf": []any{ref("Webhook"), obj(map[string]any{"secret": map[string]any{"type": "string", "description": "whsec_…, shown only here"}}, "secret")}},
	"WebhookList":    obj(map[string]any{"webhooks": map[string]any{"type": "array", "items": ref("Webhook")}}, "webhooks"),
	"WebhookTest":    obj(map[string]any{"webhook_id": str, "status": integer, "error": str}, "webhook_id"),
	"WebhookRewind":  obj(map[string]any{"after": integer}, "after"),
	"WebhookDisabled": obj(map[string]any{"webhook": integer, "peer": str,
		"reason": map[string]any{"type": "string", "enum": []string{"gone (410)", "failing", "cursor expired"}},
		"status": integer, "cursor": integer}, "webhook", "peer", "reason"),
	"MediaItem": obj(map[string]any{"id": str,
		"sha256":     map[string]any{"type": "string", "description": "hex SHA-256 of the bytes (\"\" while pending)"},
		"size":       map[string]any{"type": "integer", "description": "bytes (while pending: what WhatsApp announced)"},
		"type":       map[string]any{"type": "string", "description": "media type without parameters, e.g. image/jpeg"},
		"filename":   str,
		"state":      map[string]any{"type": "string", "enum": []string{media.StateReady, media.StatePending, media.StateFailed}},
		"error":      map[string]any{"type": "string", "description": "why the download failed"},
		"session":    map[string]any{"type": "string", "description": "inbound media: the session it came to"},
		"created_at": dateTime,
		"width":      map[string]any{"type": "integer", "description": "images (JPEG, PNG, GIF)"},
		"height":     map[string]any{"type": "integer", "description": "images (JPEG, PNG, GIF)"},
		"seconds":    map[string]any{"type": "integer", "description": "duration of audio (Ogg Opus) and video (MP4)"}},
		"id", "sha256", "size", "type", "state", "created_at"),
	"AuditList": obj(map[string]any{"next_after": integer, "entries": map[string]any{"type": "array", "items": obj(map[string]any{
		"id": integer, "at": dateTime, "peer": str, "method": str, "route": str, "target": str, "status": integer, "request_id": str,
		"count": integer, "last_at": dateTime})}}, "entries"),
}

// eventData names the schema of each event type's data. Every type in
// events.Types needs one (TestOpenAPIEventTypes).
var eventData = map[string]string{
	events.TypeMessageReceived:      "MessageReceived",
	events.TypeMessageStatus:        "MessageStatus",
	events.TypeSessionState:         "SessionState",
	events.TypeLoggedOut:            "LoggedOut",
	events.TypeTemporarilyBanned:    "TemporarilyBanned",
	events.TypeMessageUndecryptable: "MessageUndecryptable",
	events.TypeWebhookDisabled:      "WebhookDisabled",
	events.TypeMessageReaction:      "ReactionReceived",
	events.TypeMessageEdited:        "MessageEdited",
	events.TypeMessageDeleted:       "MessageDeleted",
	events.TypePollVote:             "PollVote",
	events.TypeMediaReady:           "MediaReady",
	events.TypeMediaFailed:          "MediaFailed",
}

// eventSchemas adds one Event schema per type (its type a const, its data
// that type's schema) and Event itself as their oneOf with a discriminator
// on type, so each type's JSON shape is documented.
func eventSchemas(into map[string]any) {
	var oneOf []any
	mapping := map[string]any{}
	for _, typ := range events.Types {
		data, ok := eventData[typ]
		if !ok {
			continue
		}
		name := data + "Event"
		into[name] = obj(map[string]any{"id": integer, "at": dateTime, "session": str,
			"type": map[string]any{"type": "string", "const": typ},
			"data": ref(data)}, "id", "at", "session", "type", "data")
		oneOf = append(oneOf, ref(name))
		mapping[typ] = "#/components/schemas/" + name
	}
	into["Event"] = map[string]any{"oneOf": oneOf,
		"discriminator": map[string]any{"propertyName": "type", "mapping": mapping}}
}

// mediaErrors are the media routes' own error answers.
var mediaErrors = map[string]string{
	"409": "Inbound media not downloaded yet (media_pending)",
	"410": "Inbound media whose download failed (media_failed; the error says why)",
	"411": "No Content-Length (length_required): uploads must declare their size",
	"413": "Over the limit of the media type's kind (too_large)",
	"415": "A media type the appliance does not take (unsupported_media_type), or content whose signature is not the declared type's (media_type_mismatch)",
	"507": "Does not fit under the media quota even after evicting every item no queued message needs, or uploads in progress hold the quota (media_quota_exceeded); the disk is full (insufficient_storage)",
}

var errorResponses = map[string]string{
	"400": "Malformed JSON, duplicate key, invalid UTF-8 or NUL, unknown field or invalid argument (control characters in names and ids included)",
	"403": "Missing scope, not an enabled peer, or a cross-origin write (cross_origin)",
	"415": "A request body without Content-Type: application/json",
	"421": "The Host header is not the tunnel address or an API host name (misdirected_request)",
	"404": "Unknown route or resource",
	"405": "Method not allowed",
	"408": "Request body not received in time (request_timeout)",
	"409": "Conflict with the current state (exists, not pairing, already paired, not paired, logged out, session replaced, not connected) or with the message named (not_own_message, edit_window_passed, delete_window_passed, wrong_message_kind, media_pending)",
	"410": "Event cursor older than retention; X-Oldest-Event-Id gives the oldest id kept",
	"413": "Request body or text too large",
	"429": "Rate limited (rate_limited, see Retry-After and RateLimit-* headers), or too many streams (too_many_streams)",
	"500": "Internal error; see the log with the request_id",
	"502": "WhatsApp (or the sandbox simulator) cannot be reached",
	"504": "WhatsApp did not answer in time (connecting, pairing refs, phone code)",
}

func buildOpenAPI(version string) map[string]any {
	paths := map[string]any{}
	for key, o := range operations {
		method, path, _ := strings.Cut(key, " ")
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		status := o.status
		if status == "" {
			status = "200"
		}
		resp := map[string]any{"description": "Success"}
		switch {
		case o.stream:
			resp["description"] = "A Server-Sent Events stream. Each event is `id: <Event.id>`, `event: <Event.type>` and `data: <the Event as one line of JSON>` (schema " + o.response + "); lines starting with `:` are heartbeats."
			resp["content"] = map[string]any{"text/event-stream": map[string]any{
				"schema":       map[string]any{"type": "string"},
				"x-event-data": ref(o.response)}}
		case o.rawResponse != "":
			resp["content"] = map[string]any{"*/*": map[string]any{
				"schema": map[string]any{"type": "string", "format": "binary", "description": "the bytes, as " + o.rawResponse}}}
		case o.response != "":
			resp["content"] = map[string]any{"application/json": map[string]any{"schema": ref(o.response)}}
		}
		responses := map[string]any{status: resp}
		for code, desc := range errorResponses {
			responses[code] = map[string]any{"description": desc,
				"content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
		}
		for code, desc := range o.errors {
			responses[code] = map[string]any{"description": desc,
				"content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
		}
		opDoc := map[string]any{"summary": o.summary, "responses": responses,
			"operationId": strings.ToLower(method) + strings.NewReplacer("/", "_", "{", "", "}", "", ".", "_").Replace(path)}
		if o.scope != "" {
			opDoc["description"] = "Requires scope `" + o.scope + "` (admin holds every scope)."
		}
		var params []any
		for _, v := range []string{"name", "session", "id", "phone", "chat"} {
			if strings.Contains(path, "{"+v+"}") {
				params = append(params, map[string]any{"name": v, "in": "path", "required": true, "schema": str})
			}
		}
		for _, q := range o.query {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": str})
		}
		if params != nil {
			opDoc["parameters"] = params
		}
		if o.request != "" {
			opDoc["requestBody"] = map[string]any{"required": true,
				"content": map[string]any{"application/json": map[string]any{"schema": ref(o.request)}}}
		}
		if o.rawRequest != nil {
			content := map[string]any{}
			for _, t := range o.rawRequest {
				content[t] = map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}
			}
			opDoc["requestBody"] = map[string]any{"required": true, "content": content}
		}
		item[strings.ToLower(method)] = opDoc
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "waappliance API", "version": version,
			"description": "Reachable only inside the appliance's WireGuard tunnel. The peer is identified by its WireGuard key; no other credential is accepted."},
		"servers":    []any{map[string]any{"url": "http://10.77.0.1"}},
		"paths":      paths,
		"components": map[string]any{"schemas": allSchemas()},
	}
}

func allSchemas() map[string]any {
	out := make(map[string]any, len(schemas)+len(eventData)+1)
	for k, v := range schemas {
		out[k] = v
	}
	receivedSchemas(out)
	eventSchemas(out)
	sendSchemas(out)
	return out
}

var (
	openapiOnce sync.Once
	openapiDoc  map[string]any
)

func (s *server) openapi(w http.ResponseWriter, r *http.Request) error {
	openapiOnce.Do(func() { openapiDoc = buildOpenAPI(s.version) })
	writeJSON(w, http.StatusOK, openapiDoc)
	return nil
}
