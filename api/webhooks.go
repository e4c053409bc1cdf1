package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"waappliance/peers"
	"waappliance/webhooks"
)

// Webhooks is the subset of *webhooks.Manager the webhook routes use; an
// interface so the API need not start deliveries to be tested.
type Webhooks interface {
	Create(ctx context.Context, p peers.Peer, req webhooks.CreateRequest) (webhooks.Created, error)
	List(ctx context.Context, peer string) ([]webhooks.Subscription, error)
	Get(ctx context.Context, id int64) (webhooks.Subscription, error)
	Delete(ctx context.Context, id int64) error
	SetEnabled(ctx context.Context, id int64, enabled bool) (webhooks.Subscription, error)
	RotateSecret(ctx context.Context, id int64) (webhooks.Created, error)
	Test(ctx context.Context, id int64) (webhooks.TestResult, error)
	Rewind(ctx context.Context, id int64, after int64) (webhooks.Subscription, error)
}

var errNoWebhooks = errorf(http.StatusServiceUnavailable, "unavailable", "webhooks are not running on this appliance")

func (s *server) needWebhooks(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.hooks == nil {
			return errNoWebhooks
		}
		return h(w, r)
	}
}

// ownWebhook returns the subscription of the path's id when the caller
// may see it: its own, or any for an admin. Another peer's is not found.
func (s *server) ownWebhook(r *http.Request) (webhooks.Subscription, error) {
	id, err := strconv.ParseInt(pathVar(r, "id"), 10, 64)
	if err != nil || id < 1 {
		return webhooks.Subscription{}, fmt.Errorf("%w: %q", webhooks.ErrNotFound, pathVar(r, "id"))
	}
	sub, err := s.hooks.Get(r.Context(), id)
	if err != nil {
		return sub, err
	}
	if p := PeerFrom(r.Context()); sub.Peer != p.Name && !p.Has(peers.ScopeAdmin) {
		return webhooks.Subscription{}, fmt.Errorf("%w: %d", webhooks.ErrNotFound, id)
	}
	return sub, nil
}

func (s *server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		webhooks.CreateRequest
		// Peer lets an admin subscribe for another peer (the CLI).
		Peer string `json:"peer"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	p := *PeerFrom(r.Context())
	if req.Peer != "" && req.Peer != p.Name {
		if !p.Has(peers.ScopeAdmin) {
			return errorf(http.StatusForbidden, "forbidden", "only an admin subscribes for another peer")
		}
		var err error
		if p, err = s.reg.Get(req.Peer); err != nil {
			return err
		}
	}
	c, err := s.hooks.Create(r.Context(), p, req.CreateRequest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	p := PeerFrom(r.Context())
	who := p.Name
	if p.Has(peers.ScopeAdmin) {
		who = ""
	}
	subs, err := s.hooks.List(r.Context(), who)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": subs})
	return nil
}

func (s *server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.ownWebhook(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sub)
	return nil
}

func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.ownWebhook(r)
	if err != nil {
		return err
	}
	if err := s.hooks.Delete(r.Context(), sub.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) enableWebhook(enabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sub, err := s.ownWebhook(r)
		if err != nil {
			return err
		}
		if sub, err = s.hooks.SetEnabled(r.Context(), sub.ID, enabled); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, sub)
		return nil
	}
}

func (s *server) rotateWebhook(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.ownWebhook(r)
	if err != nil {
		return err
	}
	c, err := s.hooks.RotateSecret(r.Context(), sub.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) testWebhook(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.ownWebhook(r)
	if err != nil {
		return err
	}
	res, err := s.hooks.Test(r.Context(), sub.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *server) rewindWebhook(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		After *int64 `json:"after"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.After == nil || *req.After < 0 {
		return badArg("after: want a non-negative event id")
	}
	sub, err := s.ownWebhook(r)
	if err != nil {
		return err
	}
	if sub, err = s.hooks.Rewind(r.Context(), sub.ID, *req.After); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sub)
	return nil
}
