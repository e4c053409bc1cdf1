package wasim

import (
	"context"
	"encoding/binary"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

func u32b(v uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return b[:]
}

func u24(v uint32) []byte { return u32b(v)[1:] }

func keyID(b []byte) uint32 { return binary.BigEndian.Uint32(pad4(b)) }

// handleEncrypt serves the prekey iqs: count, upload, and bundle fetch.
func (c *session) handleEncrypt(n *waBinary.Node, typ, first string) {
	switch {
	case typ == "get" && first == "count" && c.comp == nil:
		c.result(n, waBinary.Node{Tag: "count", Attrs: waBinary.Attrs{"value": 0}})
	case typ == "get" && first == "count":
		c.comp.mu().Lock()
		cnt := len(c.comp.prekeys)
		c.comp.mu().Unlock()
		c.result(n, waBinary.Node{Tag: "count", Attrs: waBinary.Attrs{"value": cnt}})
	case typ == "set" && c.comp != nil:
		var pks []preKeyRec
		for _, ch := range n.GetChildren() {
			switch ch.Tag {
			case "list":
				for _, k := range ch.GetChildren() {
					id, _ := k.GetChildByTag("id").Content.([]byte)
					v, _ := k.GetChildByTag("value").Content.([]byte)
					if len(v) == 32 {
						pks = append(pks, preKeyRec{id: keyID(id), pub: [32]byte(v)})
					}
				}
			case "skey":
				id, _ := ch.GetChildByTag("id").Content.([]byte)
				v, _ := ch.GetChildByTag("value").Content.([]byte)
				sig, _ := ch.GetChildByTag("signature").Content.([]byte)
				c.comp.mu().Lock()
				if len(v) == 32 && len(sig) == 64 {
					c.comp.skeyID, c.comp.skeyPub, c.comp.skeySig = keyID(id), [32]byte(v), [64]byte(sig)
				}
				c.comp.mu().Unlock()
			case "registration":
				if b, ok := ch.Content.([]byte); ok {
					c.comp.mu().Lock()
					c.comp.regID = keyID(b)
					c.comp.mu().Unlock()
				}
			}
		}
		c.comp.mu().Lock()
		c.comp.prekeys = append(c.comp.prekeys, pks...)
		c.comp.mu().Unlock()
		c.srv.save()
		c.result(n)
	case typ == "get" && first == "key":
		var users []waBinary.Node
		for _, u := range n.GetChildren()[0].GetChildren() {
			j, ok := u.Attrs["jid"].(types.JID)
			if !ok {
				continue
			}
			users = append(users, c.srv.bundleNode(context.Background(), j))
		}
		c.result(n, waBinary.Node{Tag: "list", Content: users})
	default:
		c.result(n)
	}
}

// bundleNode is the prekey bundle of a device for the fetch response.
func (s *Server) bundleNode(ctx context.Context, j types.JID) waBinary.Node {
	user := waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": j}}
	errNode := func(code string) waBinary.Node {
		user.Content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": code, "text": "item-not-found"}}}
		return user
	}
	a, ok := s.lookupJID(j)
	if !ok {
		return errNode("404")
	}
	if j.Device == 0 {
		d := a.primary
		pks, err := d.PreKeys.GetOrGenPreKeys(ctx, 1)
		if err != nil || len(pks) == 0 {
			return errNode("500")
		}
		d.PreKeys.MarkPreKeysAsUploaded(ctx, pks[len(pks)-1].KeyID)
		pk := pks[0]
		user.Content = []waBinary.Node{
			{Tag: "registration", Content: u32b(d.RegistrationID)},
			{Tag: "type", Content: []byte{5}},
			{Tag: "identity", Content: d.IdentityKey.Pub[:]},
			{Tag: "skey", Content: []waBinary.Node{{Tag: "id", Content: u24(d.SignedPreKey.KeyID)}, {Tag: "value", Content: d.SignedPreKey.Pub[:]}, {Tag: "signature", Content: d.SignedPreKey.Signature[:]}}},
			{Tag: "key", Content: []waBinary.Node{{Tag: "id", Content: u24(pk.KeyID)}, {Tag: "value", Content: pk.Pub[:]}}},
		}
		return user
	}
	a.mu.Lock()
	comp := a.companions[j.Device]
	a.mu.Unlock()
	if comp == nil || comp.removed {
		return errNode("404")
	}
	comp.mu().Lock()
	defer comp.mu().Unlock()
	content := []waBinary.Node{
		{Tag: "registration", Content: u32b(comp.regID)},
		{Tag: "type", Content: []byte{5}},
		{Tag: "identity", Content: comp.identity[:]},
		{Tag: "skey", Content: []waBinary.Node{{Tag: "id", Content: u24(comp.skeyID)}, {Tag: "value", Content: comp.skeyPub[:]}, {Tag: "signature", Content: comp.skeySig[:]}}},
	}
	if len(comp.prekeys) > 0 {
		pk := comp.prekeys[0]
		comp.prekeys = comp.prekeys[1:]
		content = append(content, waBinary.Node{Tag: "key", Content: []waBinary.Node{{Tag: "id", Content: u24(pk.id)}, {Tag: "value", Content: pk.pub[:]}}})
		defer func() { go s.save() }() // a one-time prekey is never handed out twice
	}
	user.Content = content
	return user
}

// handleUsync answers device-list, contact ("on WhatsApp") and LID
// queries. A user asked for by LID is answered by LID, its devices as LID
// device JIDs, as WhatsApp does; a contact query answers with the LID
// and the phone number beside it (pn_jid), as for addressing_mode "lid".
func (c *session) handleUsync(n *waBinary.Node) {
	us, ok := n.GetOptionalChildByTag("usync")
	if !ok {
		c.result(n)
		return
	}
	query, list := us.GetChildByTag("query"), us.GetChildByTag("list")
	var wantDevices, wantContact, wantLID bool
	for _, q := range query.GetChildren() {
		switch q.Tag {
		case "devices":
			wantDevices = true
		case "contact":
			wantContact = true
		case "lid":
			wantLID = true
		}
	}
	var users []waBinary.Node
	for _, u := range list.GetChildren() {
		var j types.JID
		var queryStr string
		byContact := false
		if jid, ok := u.Attrs["jid"].(types.JID); ok {
			j = jid.ToNonAD()
		} else if ct, ok := u.GetOptionalChildByTag("contact"); ok {
			switch v := ct.Content.(type) {
			case types.JID:
				j, queryStr = v, v.String()
			case string:
				queryStr = v
				j, _ = types.ParseJID(v)
			case []byte:
				queryStr = string(v)
				j, _ = types.ParseJID(string(v))
			}
			j = types.NewJID(digits(j.User), types.DefaultUserServer)
			byContact = true
		}
		if j.User == "" {
			continue
		}
		a, known := c.srv.lookupJID(j)
		attrs := waBinary.Attrs{"jid": j}
		if byContact && known {
			attrs = waBinary.Attrs{"jid": a.lid, "pn_jid": a.jid}
		}
		out := waBinary.Node{Tag: "user", Attrs: attrs}
		var content []waBinary.Node
		if wantContact {
			t := "out"
			if known {
				t = "in"
			}
			content = append(content, waBinary.Node{Tag: "contact", Attrs: waBinary.Attrs{"type": t}, Content: []byte(queryStr)})
		}
		if wantLID && known {
			content = append(content, waBinary.Node{Tag: "lid", Attrs: waBinary.Attrs{"val": a.lid}})
		}
		if wantDevices && known {
			devs := []waBinary.Node{{Tag: "device", Attrs: waBinary.Attrs{"id": "0"}}}
			a.mu.Lock()
			for id, comp := range a.companions {
				if !comp.removed {
					devs = append(devs, waBinary.Node{Tag: "device", Attrs: waBinary.Attrs{"id": strconvU(id), "key-index": strconvU(id)}})
				}
			}
			a.mu.Unlock()
			content = append(content, waBinary.Node{Tag: "devices", Content: []waBinary.Node{{Tag: "device-list", Content: devs}}})
		}
		out.Content = content
		users = append(users, out)
	}
	c.result(n, waBinary.Node{Tag: "usync", Attrs: waBinary.Attrs{"sid": us.Attrs["sid"], "mode": us.Attrs["mode"], "last": "true", "index": "0", "context": us.Attrs["context"]},
		Content: []waBinary.Node{{Tag: "list", Content: users}}})
}
