package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"gatemq/broker/packet"
	"gatemq/session"
)

// Preset subscriptions are subscriptions the broker makes for a client
// itself when it connects, whatever its protocol version, as if the
// client had sent SUBSCRIBE right after CONNACK: the filter, the ACL and
// the limits are checked (a preset failing one is skipped and logged),
// retained messages come per retain handling, and the subscriptions are
// the session's own from then on (a durable session keeps them; the
// client may unsubscribe). They come from rules in the configuration
// (Options.PresetRules, whose filters may hold %c and %u) and from the
// store (SetPreset, gatemq presets set), which wins for a filter both
// give a client. A change applies at once to a connected client and at
// its next connection otherwise; removing a stored preset also takes it
// from the client's offline session.

// Preset is one preset subscription: a topic filter and its options.
type Preset struct {
	Filter            string
	QoS               byte
	NoLocal           bool // not on a $share/ filter
	RetainAsPublished bool // v5 clients only: 3.x clients get MQTT 3's RETAIN flags
	RetainHandling    byte // 0: retained messages at every connection, 1: when new, 2: never
}

// PresetRule is a configured preset: for every client when Client is ""
// or "*", else for that client ID. Its Filter may hold %c (the client
// ID) and %u (the user name); see expandPresetFilter.
type PresetRule struct {
	Client string
	Preset
}

// PresetInfo is a preset as the admin API lists it.
type PresetInfo struct {
	ClientID string // "*" for a rule for every client
	Preset
	Source string // "stored" or "config"
}

// Errors of the preset calls.
var (
	// ErrNoPresetStore is returned by SetPreset and DeletePreset when the
	// server has no Store: stored presets need the durable store.
	ErrNoPresetStore = errors.New("mqtt: no durable store for preset subscriptions (durable sessions are off on every listener)")
	// ErrInvalidPreset is returned, wrapped, for a preset or client ID
	// that cannot be stored.
	ErrInvalidPreset = errors.New("mqtt: invalid preset subscription")
)

// presetState holds the configured rules and the stored presets.
//
// Its mutex orders every application of presets to a connection: the
// connection's reader applies them right after CONNECT (applyPresets),
// and each change applies its difference to the connections that have
// already applied theirs. A connection thus gets each change once,
// from its CONNECT or from the change.
type presetState struct {
	// mu guards rules, stored and every conn's presetsApplied. It is
	// taken before Server.connectMu.
	mu     sync.Mutex
	rules  []PresetRule
	stored map[string]map[string]Preset // client ID -> filter -> preset
}

const whyNoUsername = "no user name for %u"

// expandPresetFilter replaces %c with clientID and %u with username in
// a rule's filter. It reports false, with why, when the filter has %u
// and the client no user name, or when a value put in holds a wildcard,
// which would let a client choose what it is subscribed to.
func expandPresetFilter(filter, clientID, username string) (string, string, bool) {
	if !strings.Contains(filter, "%") {
		return filter, "", true
	}
	hasC, hasU := strings.Contains(filter, "%c"), strings.Contains(filter, "%u")
	switch {
	case hasU && username == "":
		return "", whyNoUsername, false
	case hasC && strings.ContainsAny(clientID, "+#"):
		return "", "client ID holds a wildcard", false
	case hasU && strings.ContainsAny(username, "+#"):
		return "", "user name holds a wildcard", false
	}
	return strings.NewReplacer("%c", clientID, "%u", username).Replace(filter), "", true
}

// forLocked returns the presets of a client, by filter: the rules for it
// expanded, then its stored presets, a later one replacing an earlier
// one with the same filter. Rules that do not expand are left out, and
// logged when log is not nil. p.mu must be held.
func (p *presetState) forLocked(clientID, username string, log *slog.Logger) []Preset {
	var out []Preset
	put := func(pr Preset) {
		if i := slices.IndexFunc(out, func(o Preset) bool { return o.Filter == pr.Filter }); i >= 0 {
			out[i] = pr
			return
		}
		out = append(out, pr)
	}
	for _, r := range p.rules {
		if r.Client != "" && r.Client != "*" && r.Client != clientID {
			continue
		}
		f, why, ok := expandPresetFilter(r.Filter, clientID, username)
		if !ok {
			if log != nil {
				level := slog.LevelWarn // a wildcard in a client ID or user name
				if why == whyNoUsername {
					level = slog.LevelDebug // anonymous clients are common
				}
				log.Log(context.Background(), level, "preset subscription rule skipped", logClientID, clientID,
					logUsername, username, logTopic, r.Filter, logReason, why)
			}
			continue
		}
		pr := r.Preset
		pr.Filter = f
		put(pr)
	}
	for _, pr := range p.stored[clientID] {
		put(pr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Filter < out[j].Filter })
	return out
}

// subscription returns the SUBSCRIBE entry of a preset for a client of
// version v.
func (pr Preset) subscription(v packet.Version) packet.Subscription {
	return packet.Subscription{Filter: pr.Filter, QoS: pr.QoS, NoLocal: pr.NoLocal,
		RetainAsPublished: pr.RetainAsPublished && v == packet.V5, RetainHandling: pr.RetainHandling}
}

// applyPresets subscribes a newly connected client to its presets. It
// runs on the connection's reader, after CONNACK is queued and the
// session attached.
func (s *Server) applyPresets(c *conn) {
	s.presets.mu.Lock()
	defer s.presets.mu.Unlock()
	c.presetsApplied = true
	if len(s.presets.rules) == 0 && len(s.presets.stored[c.clientID]) == 0 {
		return
	}
	c.subscribePresets(s.presets.forLocked(c.clientID, c.username, s.log))
}

// subscribePresets subscribes c's session to ps as a SUBSCRIBE without
// a SUBACK would: a preset refused is skipped and logged. It may run on
// any goroutine: it changes the session only through its own locks, and
// reads of c's fields fixed at CONNECT.
func (c *conn) subscribePresets(ps []Preset) {
	if len(ps) == 0 {
		return
	}
	var retained []session.Delivery
	if !c.srv.opts.DisableRetain {
		c.srv.retained.mu.RLock() // as handleSubscribe: see there
		defer c.srv.retained.mu.RUnlock()
	}
	now := time.Now().UnixNano()
	n := 0
	for _, pr := range ps {
		reason, ret, err := c.subscribeLocked(pr.subscription(c.version), 0, now, retained)
		if err == nil && !reason.Failed() {
			retained = ret
			n++
			continue
		}
		level := slog.LevelWarn
		if reason == packet.NotAuthorized {
			level = slog.LevelInfo // the ACL may well be meant to leave some clients out
		}
		if err != nil {
			reason = packet.ProtocolError
		}
		c.srv.log.Log(context.Background(), level, "preset subscription skipped", logClientID, c.clientID, logUsername, c.username,
			logTopic, pr.Filter, logReason, reason.String())
	}
	if n > 0 {
		c.srv.log.Debug("preset subscriptions applied", logClientID, c.clientID, "count", n)
		c.srv.persistSubscribed(c.sess, nil)
	}
	c.deliverRetained(retained)
}

// presetConnLocked returns the connection of clientID that has applied
// its presets, or nil. s.presets.mu must be held.
func (s *Server) presetConnLocked(clientID string) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.presetsApplied && c.connected.Load() && c.clientID == clientID {
			return c
		}
	}
	return nil
}

// syncPresetsLocked brings a client in line with a change of its presets
// from before to after: a connected client (c not nil) is subscribed to
// what is new or changed and unsubscribed from what is gone; an offline
// session (c nil) only loses what is gone, as who may subscribe to what
// is known only once it connects. s.presets.mu must be held. It reports
// whether a session was changed.
func (s *Server) syncPresetsLocked(clientID string, c *conn, before, after []Preset) bool {
	var add []Preset
	var gone []string
	for _, pr := range after {
		if !slices.Contains(before, pr) {
			add = append(add, pr)
		}
	}
	for _, pr := range before {
		if !slices.ContainsFunc(after, func(a Preset) bool { return a.Filter == pr.Filter }) {
			gone = append(gone, pr.Filter)
		}
	}
	if len(add) == 0 && len(gone) == 0 {
		return false
	}
	// connectMu keeps the session from ending meanwhile: one that ended
	// has left the topic tree, and must not be put back in it.
	s.connectMu.Lock()
	defer s.connectMu.Unlock()
	sess := s.sessions.Get(clientID)
	if sess == nil {
		return false
	}
	if c != nil {
		if c.sess != sess || sess.Owner() != c {
			return false // taken over: the new connection applies its own
		}
	} else {
		if sess.Owner() != nil {
			return false // connected meanwhile: its CONNECT applies them
		}
		add = nil
	}
	for _, f := range gone {
		s.unsubscribe(sess, f)
	}
	if len(add) > 0 {
		c.subscribePresets(add) // saves a durable session
	} else if s.opts.Store != nil && sess.IsDurable() {
		s.saveSession(sess, nil)
	}
	s.log.Info("preset subscriptions changed", logClientID, clientID, "online", c != nil, "added", len(add), "removed", len(gone))
	return true
}

// SetPresetRules replaces the configured preset rules (on SIGHUP). Each
// connected client gets the difference at once; offline sessions get
// the new rules at their next connection.
func (s *Server) SetPresetRules(rules []PresetRule) {
	s.presets.mu.Lock()
	defer s.presets.mu.Unlock()
	type change struct {
		c      *conn
		before []Preset
	}
	var changes []change
	s.mu.Lock()
	for c := range s.conns {
		if c.presetsApplied && c.connected.Load() {
			changes = append(changes, change{c: c})
		}
	}
	s.mu.Unlock()
	for i := range changes {
		c := changes[i].c
		changes[i].before = s.presets.forLocked(c.clientID, c.username, nil)
	}
	s.presets.rules = slices.Clone(rules)
	for _, ch := range changes {
		s.syncPresetsLocked(ch.c.clientID, ch.c, ch.before, s.presets.forLocked(ch.c.clientID, ch.c.username, nil))
	}
}

// SetPreset stores p as a preset subscription of clientID, replacing one
// with the same filter, and subscribes the client at once when it is
// connected (applied), else at its next connection. It returns once the
// preset is committed to the store.
func (s *Server) SetPreset(clientID string, p Preset) (applied bool, err error) {
	if err := checkPreset(clientID, p); err != nil {
		return false, err
	}
	return s.changeStored(clientID, func(m map[string]Preset, st PresetStore, done func(error)) int {
		m[p.Filter] = p
		st.PutPreset(clientID, p.Filter, p.marshal(), done)
		return 1
	})
}

// DeletePreset removes the stored preset subscription of clientID to
// filter, or all of clientID's stored presets when filter is "", and
// unsubscribes the client from them at once, connected or not, unless a
// rule still gives it the filter. It returns how many were removed, and
// once that is committed to the store.
func (s *Server) DeletePreset(clientID, filter string) (removed int, applied bool, err error) {
	var n int
	applied, err = s.changeStored(clientID, func(m map[string]Preset, st PresetStore, done func(error)) int {
		if filter == "" {
			n = len(m)
			clear(m)
		} else if _, ok := m[filter]; ok {
			n = 1
			delete(m, filter)
		}
		if n > 0 {
			st.DeletePreset(clientID, filter, done)
		}
		return n
	})
	return n, applied, err
}

// changeStored changes clientID's stored presets with change, which
// queues the matching store write with done and returns how many
// presets it changed; the client is brought in line at once. On a failed
// commit the client's presets are read back from the store.
func (s *Server) changeStored(clientID string, change func(m map[string]Preset, st PresetStore, done func(error)) int) (bool, error) {
	if s.opts.Store == nil {
		return false, ErrNoPresetStore
	}
	errc := make(chan error, 1)
	s.presets.mu.Lock()
	m := make(map[string]Preset, len(s.presets.stored[clientID])+1)
	for f, pr := range s.presets.stored[clientID] {
		m[f] = pr
	}
	if change(m, s.opts.Store, func(err error) { errc <- err }) == 0 {
		s.presets.mu.Unlock()
		return false, nil
	}
	applied := s.replaceStoredLocked(clientID, m)
	s.presets.mu.Unlock()
	if err := <-errc; err != nil {
		s.log.Error("store preset subscriptions: reading them back from the store", logClientID, clientID, logErr, err)
		if all, lerr := LoadStoredPresets(s.opts.Store, nil); lerr == nil {
			s.presets.mu.Lock()
			s.replaceStoredLocked(clientID, all[clientID])
			s.presets.mu.Unlock()
		}
		return false, fmt.Errorf("store preset subscriptions: %w", err)
	}
	return applied, nil
}

// replaceStoredLocked makes m clientID's stored presets and brings the
// client in line. s.presets.mu must be held.
func (s *Server) replaceStoredLocked(clientID string, m map[string]Preset) bool {
	c := s.presetConnLocked(clientID)
	user := ""
	if c != nil {
		user = c.username
	}
	before := s.presets.forLocked(clientID, user, nil)
	if len(m) == 0 {
		delete(s.presets.stored, clientID)
	} else {
		if s.presets.stored == nil {
			s.presets.stored = make(map[string]map[string]Preset)
		}
		s.presets.stored[clientID] = m
	}
	return s.syncPresetsLocked(clientID, c, before, s.presets.forLocked(clientID, user, nil)) && c != nil
}

// Presets lists the presets: with clientID "", every stored preset and
// every rule as configured; else those of clientID, rules expanded (%u
// only while it is connected). By client ID, then filter.
func (s *Server) Presets(clientID string) []PresetInfo {
	s.presets.mu.Lock()
	defer s.presets.mu.Unlock()
	user := ""
	if clientID != "" {
		if c := s.presetConnLocked(clientID); c != nil {
			user = c.username
		}
	}
	return ListPresets(s.presets.rules, s.presets.stored, clientID, user)
}

// ListPresets lists rules and stored presets as Server.Presets does,
// with username (may be "") for %u; the command line lists a stopped
// broker's with it.
func ListPresets(rules []PresetRule, stored map[string]map[string]Preset, clientID, username string) []PresetInfo {
	var out []PresetInfo
	for _, r := range rules {
		id := r.Client
		if id == "" {
			id = "*"
		}
		pr := r.Preset
		if clientID != "" {
			if id != "*" && id != clientID {
				continue
			}
			id = clientID
			user := username
			if user == "" {
				user = "%u" // shown as configured
			}
			if f, _, ok := expandPresetFilter(pr.Filter, clientID, user); ok {
				pr.Filter = f
			}
		}
		out = append(out, PresetInfo{ClientID: id, Preset: pr, Source: "config"})
	}
	for id, m := range stored {
		if clientID != "" && id != clientID {
			continue
		}
		for _, pr := range m {
			out = append(out, PresetInfo{ClientID: id, Preset: pr, Source: "stored"})
		}
	}
	SortPresets(out)
	return out
}

// SortPresets orders presets by client ID, then filter, then source.
func SortPresets(ps []PresetInfo) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.ClientID != b.ClientID {
			return a.ClientID < b.ClientID
		}
		if a.Filter != b.Filter {
			return a.Filter < b.Filter
		}
		return a.Source < b.Source
	})
}
