package wasim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// The simulated devices' Signal state lives in whatsmeow's device tables;
// what the server knows about accounts (linked companions with their
// uploaded keys, contacts and their receipt policies) is one JSON document
// beside it, rewritten on every change. Queued offline messages are not
// kept across a restart of wasim itself.

type persistedState struct {
	Accounts []persistedAccount `json:"accounts"`
}

type persistedAccount struct {
	Phone      string               `json:"phone"`
	LID        string               `json:"lid,omitempty"`
	NextDevice uint16               `json:"next_device"`
	Companions []persistedCompanion `json:"companions"`
	Contact    *persistedContact    `json:"contact,omitempty"`
}

type persistedCompanion struct {
	ID       uint16      `json:"id"`
	Identity [32]byte    `json:"identity"`
	RegID    uint32      `json:"reg_id"`
	SkeyID   uint32      `json:"skey_id"`
	SkeyPub  [32]byte    `json:"skey_pub"`
	SkeySig  [64]byte    `json:"skey_sig"`
	Prekeys  [][2]string `json:"prekeys"` // id, hex key
	Removed  bool        `json:"removed"`
}

type persistedContact struct {
	Name        string        `json:"name"`
	NoDelivered bool          `json:"no_delivered"`
	ReadAfter   time.Duration `json:"read_after"`
	ByPhone     bool          `json:"by_phone,omitempty"`
}

const stateTable = `CREATE TABLE IF NOT EXISTS wasim_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)`

// save writes the account document. Errors are logged: a test double keeps going.
func (s *Server) save() {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	var st persistedState
	s.mu.Lock()
	accs := make([]*account, 0, len(s.accounts))
	for _, a := range s.accounts {
		accs = append(accs, a)
	}
	s.mu.Unlock()
	for _, a := range accs {
		pa := persistedAccount{Phone: a.phone, LID: a.lid.User}
		a.mu.Lock()
		pa.NextDevice = a.nextDevice
		for _, c := range a.companions {
			c.lock.Lock()
			pc := persistedCompanion{ID: c.id, Identity: c.identity, RegID: c.regID, SkeyID: c.skeyID, SkeyPub: c.skeyPub, SkeySig: c.skeySig, Removed: c.removed}
			for _, pk := range c.prekeys {
				pc.Prekeys = append(pc.Prekeys, [2]string{fmt.Sprint(pk.id), fmt.Sprintf("%x", pk.pub)})
			}
			c.lock.Unlock()
			pa.Companions = append(pa.Companions, pc)
		}
		a.mu.Unlock()
		if ct := a.contact; ct != nil {
			ct.mu.Lock()
			pa.Contact = &persistedContact{Name: ct.Name, NoDelivered: ct.policy.NoDelivered, ReadAfter: ct.policy.ReadAfter, ByPhone: ct.byPhone}
			ct.mu.Unlock()
		}
		st.Accounts = append(st.Accounts, pa)
	}
	b, err := json.Marshal(st)
	if err != nil {
		s.log.Error("wasim: encode state", "err", err)
		return
	}
	if _, err := s.db.Exec(`INSERT INTO wasim_state(key, value) VALUES ('accounts', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, string(b)); err != nil {
		s.log.Error("wasim: save state", "err", err)
	}
}

// load restores the account document written by save.
func (s *Server) load(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, stateTable); err != nil {
		return err
	}
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM wasim_state WHERE key = 'accounts'`).Scan(&v)
	if err != nil {
		return nil // nothing saved yet
	}
	var st persistedState
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return fmt.Errorf("wasim: saved state: %w", err)
	}
	for _, pa := range st.Accounts {
		a, err := s.account(ctx, pa.Phone)
		if err != nil {
			return err
		}
		s.setLID(a, pa.LID)
		a.mu.Lock()
		a.nextDevice = max(a.nextDevice, pa.NextDevice)
		for _, pc := range pa.Companions {
			c := &companion{id: pc.ID, identity: pc.Identity, regID: pc.RegID, skeyID: pc.SkeyID, skeyPub: pc.SkeyPub, skeySig: pc.SkeySig, removed: pc.Removed}
			for _, pk := range pc.Prekeys {
				var r preKeyRec
				var key []byte
				fmt.Sscan(pk[0], &r.id)
				fmt.Sscanf(pk[1], "%x", &key)
				if len(key) == 32 {
					r.pub = [32]byte(key)
					c.prekeys = append(c.prekeys, r)
				}
			}
			a.companions[pc.ID] = c
		}
		a.mu.Unlock()
		if pa.Contact != nil {
			ct, err := s.Contact(pa.Phone)
			if err != nil {
				return err
			}
			ct.Name = pa.Contact.Name
			ct.policy = ReceiptPolicy{NoDelivered: pa.Contact.NoDelivered, ReadAfter: pa.Contact.ReadAfter}
			ct.byPhone = pa.Contact.ByPhone
		}
	}
	return nil
}
