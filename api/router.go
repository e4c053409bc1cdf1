package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"waappliance/media"
	"waappliance/peers"
)

// route is one API endpoint. Scope "" means any known peer may call it.
// Every route with a method other than GET is audited.
type route struct {
	method string
	path   string
	scope  peers.Scope
	h      handlerFunc
	// body lists the media types of a request body the route reads
	// (jsonBody for JSON); a body of any other type is refused with 415
	// (checkBody). nil: the route reads no body, and one sent anyway must
	// be JSON.
	body []string
	// maxBody is the route's request body limit; 0 is maxBody (64 KiB),
	// the front door's rule for every JSON body. A route that raises it
	// (raw uploads: POST /v1/media; a sandbox contact's inline media)
	// needs a Content-Length (411 without one), and its body's read deadline grows with that length
	// (bodyDeadline). limitBody applies both, before the route runs.
	maxBody int64
	// sandbox routes are served only in sandbox mode.
	sandbox bool
	// auditInWrite routes have one effect, a store write (a send's outbox
	// row), and their audit row is committed in that write's transaction
	// rather than in a commit of its own before the handler
	// (auditInWrite in middleware.go).
	auditInWrite bool
}

// routes is the whole API surface. The router (gorilla/mux) is confined to
// this file so it can be replaced in one place; openapi.go documents every
// entry and a test keeps the two in step.
func (s *server) routes() []route {
	return []route{
		{method: "GET", path: "/v1/health", h: s.health},
		{method: "GET", path: "/v1/whoami", h: s.whoami},
		{method: "GET", path: "/v1/openapi.json", h: s.openapi},

		{method: "GET", path: "/v1/peers", scope: peers.ScopeAdmin, h: s.listPeers},
		{method: "POST", path: "/v1/peers", scope: peers.ScopeAdmin, h: s.createPeer, body: jsonBody},
		{method: "GET", path: "/v1/peers/{name}", scope: peers.ScopeAdmin, h: s.getPeer},
		{method: "PATCH", path: "/v1/peers/{name}", scope: peers.ScopeAdmin, h: s.updatePeer, body: jsonBody},
		{method: "DELETE", path: "/v1/peers/{name}", scope: peers.ScopeAdmin, h: s.deletePeer},
		{method: "POST", path: "/v1/peers/{name}/rotate", scope: peers.ScopeAdmin, h: s.rotatePeer},
		{method: "GET", path: "/v1/peers/{name}/config", scope: peers.ScopeAdmin, h: s.peerConfig},

		{method: "GET", path: "/v1/audit", scope: peers.ScopeAdmin, h: s.listAudit},
		{method: "GET", path: "/v1/settings", scope: peers.ScopeAdmin, h: s.getSettings},
		{method: "PATCH", path: "/v1/settings", scope: peers.ScopeAdmin, h: s.updateSettings, body: jsonBody},

		{method: "POST", path: "/v1/sessions", scope: peers.ScopeSessions, h: s.needWA(s.createSession), body: jsonBody},
		{method: "GET", path: "/v1/sessions", scope: peers.ScopeRead, h: s.needWA(s.listSessions)},
		{method: "GET", path: "/v1/sessions/{session}", scope: peers.ScopeRead, h: s.needWA(s.getSession)},
		{method: "DELETE", path: "/v1/sessions/{session}", scope: peers.ScopeSessions, h: s.needWA(s.deleteSession)},
		{method: "POST", path: "/v1/sessions/{session}/login", scope: peers.ScopeSessions, h: s.needWA(s.loginSession)},
		{method: "GET", path: "/v1/sessions/{session}/qr", scope: peers.ScopeSessions, h: s.needWA(s.sessionQR)},
		{method: "POST", path: "/v1/sessions/{session}/pair-code", scope: peers.ScopeSessions, h: s.needWA(s.pairCode), body: jsonBody},
		{method: "POST", path: "/v1/sessions/{session}/logout", scope: peers.ScopeSessions, h: s.needWA(s.logoutSession)},
		{method: "POST", path: "/v1/sessions/{session}/messages", scope: peers.ScopeSend, h: s.needWA(s.sendMessage), body: jsonBody, auditInWrite: true},
		{method: "GET", path: "/v1/sessions/{session}/messages/{id}", scope: peers.ScopeRead, h: s.needWA(s.getMessage)},
		{method: "POST", path: "/v1/sessions/{session}/chats/{chat}/read", scope: peers.ScopeSend, h: s.needWA(s.markRead), body: jsonBody},
		{method: "POST", path: "/v1/sessions/{session}/chats/{chat}/presence", scope: peers.ScopeSend, h: s.needWA(s.chatPresence), body: jsonBody},

		{method: "POST", path: "/v1/media", scope: peers.ScopeSend, h: s.needMedia(s.uploadMedia), body: media.Accepted(), maxBody: media.MaxSize(media.KindDocument)},
		{method: "GET", path: "/v1/media/{id}", scope: peers.ScopeRead, h: s.needMedia(s.getMedia)},
		{method: "GET", path: "/v1/media/{id}/info", scope: peers.ScopeRead, h: s.needMedia(s.mediaInfo)},
		{method: "GET", path: "/v1/media/{id}/thumbnail", scope: peers.ScopeRead, h: s.needMedia(s.mediaThumbnail)},

		{method: "GET", path: "/v1/events", scope: peers.ScopeRead, h: s.needEvents(s.listEvents)},
		{method: "GET", path: "/v1/events/stream", scope: peers.ScopeRead, h: s.needEvents(s.streamEvents)},

		{method: "POST", path: "/v1/webhooks", scope: peers.ScopeRead, h: s.needWebhooks(s.createWebhook), body: jsonBody},
		{method: "GET", path: "/v1/webhooks", scope: peers.ScopeRead, h: s.needWebhooks(s.listWebhooks)},
		{method: "GET", path: "/v1/webhooks/{id}", scope: peers.ScopeRead, h: s.needWebhooks(s.getWebhook)},
		{method: "DELETE", path: "/v1/webhooks/{id}", scope: peers.ScopeRead, h: s.needWebhooks(s.deleteWebhook)},
		{method: "POST", path: "/v1/webhooks/{id}/enable", scope: peers.ScopeRead, h: s.needWebhooks(s.enableWebhook(true))},
		{method: "POST", path: "/v1/webhooks/{id}/disable", scope: peers.ScopeRead, h: s.needWebhooks(s.enableWebhook(false))},
		{method: "POST", path: "/v1/webhooks/{id}/rotate-secret", scope: peers.ScopeRead, h: s.needWebhooks(s.rotateWebhook)},
		{method: "POST", path: "/v1/webhooks/{id}/test", scope: peers.ScopeRead, h: s.needWebhooks(s.testWebhook)},
		{method: "POST", path: "/v1/webhooks/{id}/rewind", scope: peers.ScopeRead, h: s.needWebhooks(s.rewindWebhook), body: jsonBody},

		{method: "POST", path: "/v1/sandbox/scan", scope: peers.ScopeAdmin, h: s.sandboxScan, body: jsonBody, sandbox: true},
		{method: "POST", path: "/v1/sandbox/contacts", scope: peers.ScopeAdmin, h: s.sandboxAddContact, body: jsonBody, sandbox: true},
		{method: "POST", path: "/v1/sandbox/contacts/{phone}/messages", scope: peers.ScopeAdmin, h: s.sandboxContactSend, body: jsonBody, maxBody: sandboxMaxBody, sandbox: true},
		{method: "GET", path: "/v1/sandbox/contacts/{phone}/inbox", scope: peers.ScopeAdmin, h: s.sandboxInbox, sandbox: true},
	}
}

func (s *server) needWA(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.wa == nil {
			return errNoEngine
		}
		return h(w, r)
	}
}

func (s *server) needEvents(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.ev == nil {
			return errNoEngine
		}
		return h(w, r)
	}
}

func (s *server) router() http.Handler {
	r := mux.NewRouter()
	s.bodyLimits = map[string]int64{}
	for _, rt := range s.routes() {
		if rt.sandbox && s.sb == nil {
			continue
		}
		if rt.maxBody > 0 {
			s.bodyLimits[rt.method+" "+rt.path] = rt.maxBody
		}
		r.Handle(rt.path, s.wrap(rt)).Methods(rt.method)
	}
	r.NotFoundHandler = s.handle(func(w http.ResponseWriter, r *http.Request) error { return errNotFound })
	r.MethodNotAllowedHandler = s.handle(func(w http.ResponseWriter, r *http.Request) error { return errMethodNotAllowed })
	return s.outer(r)
}

// bodyLimit is the request body limit of the route r matches in router:
// its maxBody, or maxBody for every other route (and no route at all).
func (s *server) bodyLimit(router http.Handler, r *http.Request) int64 {
	if len(s.bodyLimits) > 0 && !(r.ContentLength == 0 && safeMethod(r.Method)) {
		if t, _ := matchRoute(router, r); t != "" {
			if n := s.bodyLimits[r.Method+" "+t]; n > 0 {
				return n
			}
		}
	}
	return maxBody
}

// pathVar returns the route variable name of r ("" when absent).
func pathVar(r *http.Request, name string) string { return mux.Vars(r)[name] }

// pathVars returns all route variables of r.
func pathVars(r *http.Request) map[string]string { return mux.Vars(r) }

// matchRoute returns the path template and variables of the route r
// matches in h (the router), or "" when none does. The audit names
// requests refused before routing (429) with it.
func matchRoute(h http.Handler, r *http.Request) (string, map[string]string) {
	mr, ok := h.(*mux.Router)
	if !ok {
		return "", nil
	}
	var m mux.RouteMatch
	if !mr.Match(r, &m) || m.Route == nil || m.MatchErr != nil {
		return "", nil
	}
	t, err := m.Route.GetPathTemplate()
	if err != nil {
		return "", nil
	}
	return t, m.Vars
}

// registeredRoutes lists "METHOD path" of every route the router serves;
// the OpenAPI test compares it with the document.
func registeredRoutes(h http.Handler) []string {
	var out []string
	r, ok := unwrapRouter(h)
	if !ok {
		return nil
	}
	r.Walk(func(rt *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		t, err1 := rt.GetPathTemplate()
		ms, err2 := rt.GetMethods()
		if err1 == nil && err2 == nil {
			for _, m := range ms {
				out = append(out, m+" "+t)
			}
		}
		return nil
	})
	return out
}

func unwrapRouter(h http.Handler) (*mux.Router, bool) {
	if o, ok := h.(*outerHandler); ok {
		h = o.next
	}
	r, ok := h.(*mux.Router)
	return r, ok
}
