package broker

import (
	"sort"
	"sync"
	"time"

	"gatemq/boltstore"
)

// memStatus keeps status records in memory, for a broker without a
// store: up to maxMemStatus of them; beyond, an arbitrary offline record
// is forgotten for each new client ID.
type memStatus struct {
	// mu guards recs.
	mu   sync.Mutex
	recs map[string]boltstore.ClientStatus
}

func (m *memStatus) PutStatus(recs []boltstore.ClientStatus, done func(error)) {
	m.mu.Lock()
	for _, r := range recs {
		if _, ok := m.recs[r.ClientID]; !ok && len(m.recs) >= maxMemStatus {
			for id, old := range m.recs {
				if !old.Online {
					delete(m.recs, id)
					break
				}
			}
		}
		m.recs[r.ClientID] = r
	}
	m.mu.Unlock()
	done(nil)
}

func (m *memStatus) PruneStatus(before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, r := range m.recs {
		if !r.Online && r.OfflineAt.Before(before) {
			delete(m.recs, id)
			n++
		}
	}
	return n, nil
}

func (m *memStatus) Status(clientID string) (boltstore.ClientStatus, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[clientID]
	return r, ok, nil
}

func (m *memStatus) Statuses(fn func(boltstore.ClientStatus) error, _ func(string, error)) error {
	m.mu.Lock()
	all := make([]boltstore.ClientStatus, 0, len(m.recs))
	for _, r := range m.recs {
		all = append(all, r)
	}
	m.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].ClientID < all[j].ClientID })
	for _, r := range all {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}
