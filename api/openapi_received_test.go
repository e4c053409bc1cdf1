package api

import (
	"encoding/json"
	"strings"
	"testing"

	"waappliance/whatsapp"
)

// TestOpenAPIReceivedKinds: message.received is documented as one schema
// per kind with kind as the discriminator, and every kind the engine
// writes has its schema, tying kind to that one value.
func TestOpenAPIReceivedKinds(t *testing.T) {
	b, err := json.Marshal(buildOpenAPI("test"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Components struct{ Schemas map[string]json.RawMessage }
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var mr struct {
		OneOf []struct {
			Ref string `json:"$ref"`
		}
		Discriminator struct {
			PropertyName string `json:"propertyName"`
			Mapping      map[string]string
		}
	}
	if err := json.Unmarshal(d.Components.Schemas["MessageReceived"], &mr); err != nil || mr.Discriminator.PropertyName != "kind" {
		t.Fatalf("MessageReceived has no discriminator on kind: %s", d.Components.Schemas["MessageReceived"])
	}
	if len(mr.OneOf) != len(whatsapp.ReceivedKinds) || len(mr.Discriminator.Mapping) != len(whatsapp.ReceivedKinds) {
		t.Fatalf("%d schemas and %d mappings for %d kinds", len(mr.OneOf), len(mr.Discriminator.Mapping), len(whatsapp.ReceivedKinds))
	}
	for _, kind := range whatsapp.ReceivedKinds {
		ref, ok := mr.Discriminator.Mapping[kind]
		if !ok {
			t.Errorf("kind %q has no schema", kind)
			continue
		}
		var s struct {
			AllOf []struct {
				Ref        string `json:"$ref"`
				Properties map[string]struct{ Const string }
			}
		}
		raw := d.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
		if json.Unmarshal(raw, &s) != nil || len(s.AllOf) != 2 || s.AllOf[0].Ref != "#/components/schemas/MessageReceivedBase" || s.AllOf[1].Properties["kind"].Const != kind {
			t.Errorf("kind %q: schema %s does not tie kind to it on the common base: %s", kind, ref, raw)
		}
	}
}

// TestOpenAPISchemaNamesUnique: the parts of the document that add
// schemas never name one twice (a later part would silently replace an
// earlier one's schema).
func TestOpenAPISchemaNamesUnique(t *testing.T) {
	seen := map[string]string{}
	for k := range schemas {
		seen[k] = "schemas"
	}
	for name, part := range map[string]func(map[string]any){"receivedSchemas": receivedSchemas, "eventSchemas": eventSchemas, "sendSchemas": sendSchemas} {
		m := map[string]any{}
		part(m)
		for k := range m {
			if other, ok := seen[k]; ok {
				t.Errorf("schema %s is written by %s and %s", k, other, name)
			}
			seen[k] = name
		}
	}
}
