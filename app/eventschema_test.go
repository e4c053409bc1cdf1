package app_test

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"waappliance/internal/wgclient"
)

// undocumentedFields returns, for each event the appliance listed (type and
// data as GET /v1/events shows them), the top-level data fields that its
// schema in the served OpenAPI document does not name: what an integrator
// generating a client from the document would never see. The schema of an
// event's data is followed through $ref, allOf, and a oneOf's discriminator
// (message.received by kind).
func undocumentedFields(t *testing.T, cl *wgclient.Client, evs []loggedEvent) []string {
	t.Helper()
	var doc struct {
		Components struct{ Schemas map[string]json.RawMessage }
	}
	if r := do(t, cl, "GET", "/v1/openapi.json", nil); r.Status != 200 || r.JSON(&doc) != nil {
		t.Fatalf("openapi: %d %s", r.Status, r.Body)
	}
	type schema struct {
		Ref           string `json:"$ref"`
		Properties    map[string]json.RawMessage
		AllOf         []json.RawMessage
		OneOf         []json.RawMessage
		Discriminator struct {
			PropertyName string `json:"propertyName"`
			Mapping      map[string]string
		}
	}
	named := func(ref string) json.RawMessage {
		raw, ok := doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
		if !ok {
			t.Fatalf("dangling $ref %s", ref)
		}
		return raw
	}
	// fields adds the property names raw documents for data to into.
	var fields func(raw json.RawMessage, data map[string]json.RawMessage, into map[string]bool)
	fields = func(raw json.RawMessage, data map[string]json.RawMessage, into map[string]bool) {
		var s schema
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("schema %s: %v", raw, err)
		}
		if s.Ref != "" {
			fields(named(s.Ref), data, into)
		}
		for p := range s.Properties {
			into[p] = true
		}
		for _, part := range s.AllOf {
			fields(part, data, into)
		}
		if len(s.OneOf) > 0 {
			var v string
			if p := s.Discriminator.PropertyName; p != "" && json.Unmarshal(data[p], &v) == nil && s.Discriminator.Mapping[v] != "" {
				fields(named(s.Discriminator.Mapping[v]), data, into)
			} else {
				for _, part := range s.OneOf {
					fields(part, data, into)
				}
			}
		}
	}
	var event schema
	json.Unmarshal(doc.Components.Schemas["Event"], &event)
	var missing []string
	for _, e := range evs {
		ref, ok := event.Discriminator.Mapping[e.Type]
		if !ok {
			missing = append(missing, e.Type+": no schema")
			continue
		}
		var es struct {
			Properties struct{ Data json.RawMessage }
		}
		json.Unmarshal(named(ref), &es)
		var data map[string]json.RawMessage
		if json.Unmarshal(e.Data, &data) != nil {
			continue // not an object: nothing to name
		}
		known := map[string]bool{}
		fields(es.Properties.Data, data, known)
		for k := range data {
			if !known[k] {
				missing = append(missing, e.Type+"."+k)
			}
		}
	}
	sort.Strings(missing)
	return slices.Compact(missing)
}
