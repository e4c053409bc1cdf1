package api

import (
	"reflect"
	"strings"
	"testing"

	"waappliance/whatsapp"
)

// TestOpenAPISendKinds: every kind Send takes has its request schema in
// SendRequest's oneOf and its Message schema under the kind discriminator,
// and every field the send handler decodes is documented for some kind.
func TestOpenAPISendKinds(t *testing.T) {
	s := buildOpenAPI("test")["components"].(map[string]any)["schemas"].(map[string]any)
	oneOf := map[string]bool{}
	for _, r := range s["SendRequest"].(map[string]any)["oneOf"].([]any) {
		oneOf[strings.TrimPrefix(r.(map[string]any)["$ref"].(string), "#/components/schemas/")] = true
	}
	mapping := s["Message"].(map[string]any)["discriminator"].(map[string]any)["mapping"].(map[string]any)
	documented := map[string]bool{}
	for _, k := range whatsapp.Kinds {
		name := "Send" + kindTitle(k)
		if !oneOf[name] {
			t.Errorf("kind %s: %s is not in SendRequest's oneOf", k, name)
		}
		req, ok := s[name].(map[string]any)
		if !ok || !contains(req["required"], k) {
			t.Errorf("kind %s: %s does not require the %s field: %v", k, name, k, req)
			continue
		}
		for p := range req["properties"].(map[string]any) {
			documented[p] = true
		}
		if mapping[k] != "#/components/schemas/Message"+kindTitle(k) {
			t.Errorf("kind %s: Message's discriminator maps it to %v", k, mapping[k])
		}
	}
	rt := reflect.TypeOf(sendRequest{})
	for i := 0; i < rt.NumField(); i++ {
		if tag := rt.Field(i).Tag.Get("json"); !documented[tag] {
			t.Errorf("the send handler decodes %q, which no Send schema documents", tag)
		}
	}
}

func contains(list any, v string) bool {
	switch l := list.(type) {
	case []string:
		for _, x := range l {
			if x == v {
				return true
			}
		}
	}
	return false
}
