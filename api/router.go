package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"waappliance/peers"
)

// route is one API endpoint. Scope "" means any known peer may call it.
// Every route with a method other than GET is audited.
type route struct {
	method string
	path   string
	scope  peers.Scope
	h      handlerFunc
	// sandbox routes are served only in sandbox mode.
	sandbox bool
}

// routes is the whole API surface. The router (gorilla/mux) is confined to
// this file so it can be replaced in one place; openapi.go documents every
// entry and a test keeps the two in step.
func (s *server) routes() []route {
	return []route{
		{"GET", "/v1/health", "", s.health, false},
		{"GET", "/v1/whoami", "", s.whoami, false},
		{"GET", "/v1/openapi.json", "", s.openapi, false},

		{"GET", "/v1/peers", peers.ScopeAdmin, s.listPeers, false},
		{"POST", "/v1/peers", peers.ScopeAdmin, s.createPeer, false},
		{"GET", "/v1/peers/{name}", peers.ScopeAdmin, s.getPeer, false},
		{"PATCH", "/v1/peers/{name}", peers.ScopeAdmin, s.updatePeer, false},
		{"DELETE", "/v1/peers/{name}", peers.ScopeAdmin, s.deletePeer, false},
		{"POST", "/v1/peers/{name}/rotate", peers.ScopeAdmin, s.rotatePeer, false},
		{"GET", "/v1/peers/{name}/config", peers.ScopeAdmin, s.peerConfig, false},

		{"GET", "/v1/audit", peers.ScopeAdmin, s.listAudit, false},

		{"POST", "/v1/sessions", peers.ScopeSessions, s.needWA(s.createSession), false},
		{"GET", "/v1/sessions", peers.ScopeRead, s.needWA(s.listSessions), false},
		{"GET", "/v1/sessions/{session}", peers.ScopeRead, s.needWA(s.getSession), false},
		{"DELETE", "/v1/sessions/{session}", peers.ScopeSessions, s.needWA(s.deleteSession), false},
		{"POST", "/v1/sessions/{session}/login", peers.ScopeSessions, s.needWA(s.loginSession), false},
		{"GET", "/v1/sessions/{session}/qr", peers.ScopeSessions, s.needWA(s.sessionQR), false},
		{"POST", "/v1/sessions/{session}/pair-code", peers.ScopeSessions, s.needWA(s.pairCode), false},
		{"POST", "/v1/sessions/{session}/logout", peers.ScopeSessions, s.needWA(s.logoutSession), false},
		{"POST", "/v1/sessions/{session}/messages", peers.ScopeSend, s.needWA(s.sendMessage), false},
		{"GET", "/v1/sessions/{session}/messages/{id}", peers.ScopeRead, s.needWA(s.getMessage), false},

		{"GET", "/v1/events", peers.ScopeRead, s.needEvents(s.listEvents), false},
		{"GET", "/v1/events/stream", peers.ScopeRead, s.needEvents(s.streamEvents), false},

		{"POST", "/v1/sandbox/scan", peers.ScopeAdmin, s.sandboxScan, true},
		{"POST", "/v1/sandbox/contacts", peers.ScopeAdmin, s.sandboxAddContact, true},
		{"POST", "/v1/sandbox/contacts/{phone}/messages", peers.ScopeAdmin, s.sandboxContactSend, true},
		{"GET", "/v1/sandbox/contacts/{phone}/inbox", peers.ScopeAdmin, s.sandboxInbox, true},
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
	for _, rt := range s.routes() {
		if rt.sandbox && s.sb == nil {
			continue
		}
		r.Handle(rt.path, s.wrap(rt)).Methods(rt.method)
	}
	r.NotFoundHandler = s.handle(func(w http.ResponseWriter, r *http.Request) error { return errNotFound })
	r.MethodNotAllowedHandler = s.handle(func(w http.ResponseWriter, r *http.Request) error { return errMethodNotAllowed })
	return s.outer(r)
}

// pathVar returns the route variable name of r ("" when absent).
func pathVar(r *http.Request, name string) string { return mux.Vars(r)[name] }

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
