package session

import "sync"

// Registry maps client identifiers to sessions. It is safe for concurrent
// use.
type Registry struct {
	opts Options

	// mu guards m.
	mu sync.Mutex
	m  map[string]*Session
}

// NewRegistry returns an empty registry whose sessions use opts.
func NewRegistry(opts Options) *Registry {
	return &Registry{opts: opts.withDefaults(), m: make(map[string]*Session)}
}

// Get returns the session of clientID, or nil.
func (r *Registry) Get(clientID string) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[clientID]
}

// Open returns the session for a connecting client. With clean set, any
// existing session is replaced by a new one [MQTT-3.1.2-4] and returned as
// replaced, for the caller to end; otherwise an existing one is resumed
// and present reports so [MQTT-3.2.2-2].
func (r *Registry) Open(clientID string, clean bool) (s *Session, present bool, replaced *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.m[clientID]
	if ok && !clean {
		return old, true, nil
	}
	s = New(clientID, r.opts)
	r.m[clientID] = s
	return s, false, old
}

// Remove deletes s from the registry and reports whether it was there;
// a session already replaced under the same client identifier stays.
func (r *Registry) Remove(s *Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[s.ClientID] != s {
		return false
	}
	delete(r.m, s.ClientID)
	return true
}

// Len returns the number of sessions.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// All returns a snapshot of the sessions.
func (r *Registry) All() []*Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Session, 0, len(r.m))
	for _, s := range r.m {
		out = append(out, s)
	}
	return out
}

// SetOptions changes the options of the registry's sessions: sessions
// opened from now on get opts, and the existing ones apply its queue caps
// (MaxQueued, MaxQueuedBytes, QueueQoS0) and AwaitRelTimeout from their
// next delivery and MaxInflight from their next Attach. Deliveries queued
// beyond a lowered cap stay queued.
func (r *Registry) SetOptions(opts Options) {
	opts = opts.withDefaults()
	r.mu.Lock()
	r.opts = opts
	all := make([]*Session, 0, len(r.m))
	for _, s := range r.m {
		all = append(all, s)
	}
	r.mu.Unlock()
	// Not under r.mu: the lock order has no registry-then-session pair.
	for _, s := range all {
		s.mu.Lock()
		s.opts = opts
		s.mu.Unlock()
	}
}
