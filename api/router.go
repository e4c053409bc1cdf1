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
}

// routes is the whole API surface. The router (gorilla/mux) is confined to
// this file so it can be replaced in one place; openapi.go documents every
// entry and a test keeps the two in step.
func (s *server) routes() []route {
	return []route{
		{"GET", "/v1/health", "", s.health},
		{"GET", "/v1/whoami", "", s.whoami},
		{"GET", "/v1/openapi.json", "", s.openapi},

		{"GET", "/v1/peers", peers.ScopeAdmin, s.listPeers},
		{"POST", "/v1/peers", peers.ScopeAdmin, s.createPeer},
		{"GET", "/v1/peers/{name}", peers.ScopeAdmin, s.getPeer},
		{"PATCH", "/v1/peers/{name}", peers.ScopeAdmin, s.updatePeer},
		{"DELETE", "/v1/peers/{name}", peers.ScopeAdmin, s.deletePeer},
		{"POST", "/v1/peers/{name}/rotate", peers.ScopeAdmin, s.rotatePeer},
		{"GET", "/v1/peers/{name}/config", peers.ScopeAdmin, s.peerConfig},

		{"GET", "/v1/audit", peers.ScopeAdmin, s.listAudit},
	}
}

func (s *server) router() http.Handler {
	r := mux.NewRouter()
	for _, rt := range s.routes() {
		r.Handle(rt.path, s.wrap(rt)).Methods(rt.method)
	}
	r.NotFoundHandler = s.handle(func(w http.ResponseWriter, r *http.Request) error { return errNotFound })
	r.MethodNotAllowedHandler = s.handle(func(w http.ResponseWriter, r *http.Request) error { return errMethodNotAllowed })
	return s.outer(r)
}

// pathVar returns the route variable name of r ("" when absent).
func pathVar(r *http.Request, name string) string { return mux.Vars(r)[name] }

// routeTemplate returns the matched route's path template, for the audit log.
func routeTemplate(r *http.Request) string {
	if cr := mux.CurrentRoute(r); cr != nil {
		if t, err := cr.GetPathTemplate(); err == nil {
			return t
		}
	}
	return r.URL.Path
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
