package broker

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"gatemq/boltstore"
	"gatemq/broker/packet"
)

// Stored presets: how they are read from and written to the durable
// store, checked and encoded.

// restorePresets loads the stored presets; a corrupt one is logged and
// left out.
func (s *Server) restorePresets() error {
	all, err := LoadStoredPresets(s.opts.Store, func(id, filter string, err error) {
		s.log.Error("corrupt preset subscription skipped", logClientID, id, logTopic, filter, logErr, err)
	})
	if err != nil {
		return fmt.Errorf("restore preset subscriptions: %w", err)
	}
	s.presets.mu.Lock()
	s.presets.stored = all
	s.presets.mu.Unlock()
	return nil
}

// PresetStore is what stored presets need of the durable store;
// *boltstore.Store implements it. done callbacks run on the store's
// writer goroutine after the commit.
type PresetStore interface {
	PutPreset(clientID, filter string, value []byte, done func(error))
	DeletePreset(clientID, filter string, done func(error))
	LoadPresets(fn func(clientID, filter string, value []byte) error, bad func(clientID, filter string, err error)) error
}

// LoadStoredPresets reads every stored preset, by client ID and filter.
// A value that fails its checksum or does not decode goes to bad (may be
// nil) and is left out. The command line reads a stopped broker's store
// with it.
func LoadStoredPresets(st PresetStore, bad func(clientID, filter string, err error)) (map[string]map[string]Preset, error) {
	all := make(map[string]map[string]Preset)
	err := st.LoadPresets(func(id, filter string, v []byte) error {
		pr, err := unmarshalPreset(filter, v)
		if err != nil {
			if bad != nil {
				bad(id, filter, err)
			}
			return nil
		}
		if all[id] == nil {
			all[id] = make(map[string]Preset)
		}
		all[id][filter] = pr
		return nil
	}, bad)
	return all, err
}

// StorePreset checks p and writes it to st as clientID's, waiting for the
// commit: gatemq presets set on a stopped broker's store.
func StorePreset(st PresetStore, clientID string, p Preset) error {
	if err := checkPreset(clientID, p); err != nil {
		return err
	}
	errc := make(chan error, 1)
	st.PutPreset(clientID, p.Filter, p.marshal(), func(err error) { errc <- err })
	return <-errc
}

// DeleteStoredPreset removes clientID's preset to filter, or all of its
// presets when filter is "", from st, waiting for the commit.
func DeleteStoredPreset(st PresetStore, clientID, filter string) error {
	errc := make(chan error, 1)
	st.DeletePreset(clientID, filter, func(err error) { errc <- err })
	return <-errc
}

// checkPreset reports whether p can be stored as clientID's preset.
func checkPreset(clientID string, p Preset) error {
	switch {
	case clientID == "" || len(clientID) > 65535 || !utf8.ValidString(clientID) || strings.ContainsRune(clientID, 0):
		return fmt.Errorf("client ID %q: %w", clientID, ErrInvalidPreset)
	case p.QoS > 2:
		return fmt.Errorf("QoS %d: %w", p.QoS, ErrInvalidPreset)
	case p.RetainHandling > 2:
		return fmt.Errorf("retain handling %d: %w", p.RetainHandling, ErrInvalidPreset)
	}
	if err := packet.ValidTopicFilter(p.Filter); err != nil {
		return fmt.Errorf("filter %q: %v: %w", p.Filter, err, ErrInvalidPreset)
	}
	if !boltstore.PresetFits(clientID, p.Filter) {
		return fmt.Errorf("client ID and filter of %d bytes: too long for a store key: %w", len(clientID)+len(p.Filter), ErrInvalidPreset)
	}
	if _, _, shared := splitShared(p.Filter); shared && p.NoLocal {
		return fmt.Errorf("no local on shared subscription %q: %w", p.Filter, ErrInvalidPreset) // [MQTT-3.8.3-4]
	}
	return nil
}

// A stored preset is version 1 and a flags byte: QoS in bits 0-1, no
// local bit 2, retain as published bit 3, retain handling bits 4-5.
const presetVersion = 1

func (pr Preset) marshal() []byte {
	f := pr.QoS & 3
	if pr.NoLocal {
		f |= 1 << 2
	}
	if pr.RetainAsPublished {
		f |= 1 << 3
	}
	f |= (pr.RetainHandling & 3) << 4
	return []byte{presetVersion, f}
}

func unmarshalPreset(filter string, b []byte) (Preset, error) {
	if len(b) != 2 || b[0] != presetVersion {
		return Preset{}, fmt.Errorf("preset value % x: unknown format", b)
	}
	f := b[1]
	pr := Preset{Filter: filter, QoS: f & 3, NoLocal: f&(1<<2) != 0, RetainAsPublished: f&(1<<3) != 0, RetainHandling: (f >> 4) & 3}
	if pr.QoS > 2 || pr.RetainHandling > 2 || f>>6 != 0 {
		return Preset{}, fmt.Errorf("preset value % x: bad flags", b)
	}
	return pr, nil
}
