package api

import (
	"net/http"
	"strings"
	"sync"
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
)

var schemas = map[string]any{
	"Object": map[string]any{"type": "object"},
	"Error": obj(map[string]any{"error": obj(map[string]any{
		"code": str, "message": str, "request_id": str}, "code", "message", "request_id")}, "error"),
	"Health": obj(map[string]any{"status": str, "version": str, "sandbox": boolean}, "status", "version"),
	"Peer": obj(map[string]any{
		"name": str, "public_key": str, "address": str, "scopes": strList, "sessions": strList,
		"rate": number, "burst": integer, "expires_at": nullTime, "disabled": boolean,
		"state":      map[string]any{"type": "string", "enum": []string{"enabled", "disabled", "expired"}},
		"created_at": dateTime, "updated_at": dateTime,
		"last_handshake": dateTime, "rx_bytes": integer, "tx_bytes": integer, "connected": boolean,
	}, "name", "public_key", "address", "scopes"),
	"Whoami":   map[string]any{"allOf": []any{ref("Peer"), obj(map[string]any{"sandbox": boolean})}},
	"PeerList": obj(map[string]any{"peers": map[string]any{"type": "array", "items": ref("Peer")}}, "peers"),
	"PeerCreate": obj(map[string]any{
		"name": str, "scopes": strList, "public_key": str, "rate": number, "burst": integer,
		"expires_in": str, "expires_at": dateTime, "sessions": strList}, "name"),
	"PeerUpdate": obj(map[string]any{
		"scopes": strList, "sessions": strList, "rate": number, "burst": integer,
		"expires_in": str, "expires_at": nullTime, "disabled": boolean}),
	"PeerCreated": obj(map[string]any{"peer": ref("Peer"), "config": str, "private_key": str, "warning": str}, "peer", "config"),
	"PeerConfig":  obj(map[string]any{"name": str, "config": str}, "name", "config"),
	"AuditList": obj(map[string]any{"next_after": integer, "entries": map[string]any{"type": "array", "items": obj(map[string]any{
		"id": integer, "at": dateTime, "peer": str, "method": str, "route": str, "target": str, "status": integer, "request_id": str})}}, "entries"),
}

var errorResponses = map[string]string{
	"400": "Malformed JSON, unknown field or invalid argument",
	"403": "Missing scope, or not an enabled peer",
	"404": "Unknown route or resource",
	"405": "Method not allowed",
	"413": "Request body too large",
	"429": "Rate limited; see Retry-After and RateLimit-* headers",
	"500": "Internal error; see the log with the request_id",
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
		if o.response != "" {
			resp["content"] = map[string]any{"application/json": map[string]any{"schema": ref(o.response)}}
		}
		responses := map[string]any{status: resp}
		for code, desc := range errorResponses {
			responses[code] = map[string]any{"description": desc,
				"content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
		}
		opDoc := map[string]any{"summary": o.summary, "responses": responses,
			"operationId": strings.ToLower(method) + strings.NewReplacer("/", "_", "{", "", "}", "", ".", "_").Replace(path)}
		if o.scope != "" {
			opDoc["description"] = "Requires scope `" + o.scope + "` (admin holds every scope)."
		}
		var params []any
		if strings.Contains(path, "{name}") {
			params = append(params, map[string]any{"name": "name", "in": "path", "required": true, "schema": str})
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
		item[strings.ToLower(method)] = opDoc
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "waappliance API", "version": version,
			"description": "Reachable only inside the appliance's WireGuard tunnel. The peer is identified by its WireGuard key; no other credential is accepted."},
		"servers":    []any{map[string]any{"url": "http://10.77.0.1"}},
		"paths":      paths,
		"components": map[string]any{"schemas": schemas},
	}
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
