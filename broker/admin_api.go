package broker

import (
	"sort"
	"time"

	"gatemq/broker/packet"
	"gatemq/session"
)

// The read-only views and the kick of the admin API. Every method here is
// safe for concurrent use and returns copies: nothing returned aliases the
// broker's state.

// SessionInfo describes a session, connected or not.
type SessionInfo struct {
	ClientID      string
	Online        bool
	Durable       bool
	ExpirySeconds uint32
	// LastSeen is when a connection last attached (for an online
	// session: since when it is connected) or detached.
	LastSeen      time.Time
	Subscriptions int
	Inflight      int
	Queued        int // in memory; a durable session's backlog is in the store
	Dropped       uint64
}

// SubscriptionInfo describes one subscription of a session.
type SubscriptionInfo struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32 // subscription identifier, 0 for none
}

// RetainedInfo describes a retained message, without its payload.
type RetainedInfo struct {
	Topic   string
	QoS     byte
	Bytes   int       // payload size
	From    string    // the publisher's client ID
	Expires time.Time // zero for never
}

// Sessions returns every session, connected and disconnected (durable
// ones restored from the store included), by client ID.
func (s *Server) Sessions() []SessionInfo {
	all := s.sessions.All()
	out := make([]SessionInfo, 0, len(all))
	for _, sess := range all {
		out = append(out, sessionInfo(sess))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

// Session returns the session of clientID and its subscriptions, by
// filter, and reports whether there is one.
func (s *Server) Session(clientID string) (SessionInfo, []SubscriptionInfo, bool) {
	sess := s.sessions.Get(clientID)
	if sess == nil {
		return SessionInfo{}, nil, false
	}
	subs := sess.Subscriptions()
	out := make([]SubscriptionInfo, 0, len(subs))
	for _, sub := range subs {
		out = append(out, SubscriptionInfo{Filter: sub.Filter, QoS: sub.QoS, NoLocal: sub.NoLocal,
			RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling, ID: sub.ID})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Filter < out[j].Filter })
	return sessionInfo(sess), out, true
}

func sessionInfo(sess *session.Session) SessionInfo {
	st := sess.Stats()
	return SessionInfo{ClientID: sess.ClientID, Online: sess.Online(), Durable: sess.IsDurable(),
		ExpirySeconds: sess.Expiry(), LastSeen: sess.LastSeen().UTC(), Subscriptions: st.Subscriptions,
		Inflight: st.Inflight, Queued: st.Queued, Dropped: st.Dropped}
}

// SessionCounts returns the numbers of sessions with and without a
// connection.
func (s *Server) SessionCounts() (online, offline int) {
	for _, sess := range s.sessions.All() {
		if sess.Online() {
			online++
		} else {
			offline++
		}
	}
	return online, offline
}

// RetainedMessages returns the retained messages that have not expired,
// by topic.
func (s *Server) RetainedMessages() []RetainedInfo {
	s.retained.mu.RLock()
	msgs := s.retained.root.all(time.Now().UnixNano(), nil)
	s.retained.mu.RUnlock()
	out := make([]RetainedInfo, 0, len(msgs))
	for _, m := range msgs {
		ri := RetainedInfo{Topic: m.Topic, QoS: m.QoS, Bytes: len(m.Payload), From: m.From}
		if m.Expires != 0 {
			ri.Expires = time.Unix(0, m.Expires).UTC()
		}
		out = append(out, ri)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}

// Listening returns the number of listeners whose accept loop runs.
func (s *Server) Listening() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listeners)
}

// Kick disconnects the client connected as clientID: a v5 client gets
// DISCONNECT with Administrative action (0x98) first; then the connection
// is closed and, as for any close the client did not ask for, its will
// is published. It reports whether such a client was connected, and
// blocks until the connection is closed or timeout passes.
func (s *Server) Kick(clientID string, timeout time.Duration) bool {
	s.mu.Lock()
	var found *conn
	for c := range s.conns {
		if c.connected.Load() && c.clientID == clientID {
			found = c
			break
		}
	}
	s.mu.Unlock()
	if found == nil {
		return false
	}
	s.log.Info("kicking client", logClientID, clientID, logRemote, found.remote)
	found.disconnect(closeKicked, packet.AdministrativeAction)
	select {
	case <-found.done:
	case <-time.After(timeout):
		found.closeSocket()
	}
	return true
}
