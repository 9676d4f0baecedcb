package broker

import (
	"sync"

	"gatemq/session"
)

var matchPool = sync.Pool{New: func() any { s := make([]subscriber, 0, 64); return &s }}

// publish stores m as retained when its RETAIN flag is set and routes it to
// every matching subscription. It returns the number of sessions that
// accepted it. It never blocks on a subscriber.
func (s *Server) publish(m *session.Message) int {
	if m.Retain {
		// A retained message is routed with the retained store locked:
		// a new subscription takes its retained snapshot under the same
		// lock, so it gets the message either in the snapshot or live,
		// never both and never neither.
		s.retained.mu.Lock()
		defer s.retained.mu.Unlock()
		s.retained.setLocked(m)
	}
	return s.route(m)
}

// route delivers m once to each session with a matching ordinary
// subscription, with the greatest granted QoS and every matching
// subscription identifier [MQTT-3.3.4-2..5], and once to one member of
// each matching shared group.
func (s *Server) route(m *session.Message) int {
	bp := matchPool.Get().(*[]subscriber)
	subs := s.topics.match(m.Topic, (*bp)[:0])
	n := 0
	// For a large fan-out, count each session's ordinary matches first so
	// that only sessions with overlapping subscriptions pay for merging.
	var counts map[*session.Session]int
	if len(subs) > 16 {
		counts = make(map[*session.Session]int, len(subs))
		for i := range subs {
			if !subs[i].shared {
				counts[subs[i].sess]++
			}
		}
	}
	for i := range subs {
		e := &subs[i]
		if e.sess == nil {
			continue // merged into an earlier entry
		}
		d := session.Delivery{Msg: m, QoS: min(m.QoS, e.sub.QoS), Retain: m.Retain && e.sub.RetainAsPublished}
		if e.sub.ID != 0 {
			d.SubIDs = []uint32{e.sub.ID}
		}
		local := e.sub.NoLocal && m.From == e.sess.ClientID // [MQTT-3.8.3-3]
		if !e.shared && (counts == nil || counts[e.sess] > 1) {
			// Fold the session's other matching subscriptions into this
			// delivery.
			for j := i + 1; j < len(subs); j++ {
				o := &subs[j]
				if o.sess != e.sess || o.shared {
					continue
				}
				o.sess = nil
				if o.sub.NoLocal && m.From == e.sess.ClientID {
					continue
				}
				if local { // the first match was a no-local one: start from o
					d.QoS, d.Retain, d.SubIDs = 0, false, nil
					local = false
				}
				d.QoS = max(d.QoS, min(m.QoS, o.sub.QoS))
				d.Retain = d.Retain || (m.Retain && o.sub.RetainAsPublished)
				if o.sub.ID != 0 {
					d.SubIDs = append(d.SubIDs, o.sub.ID)
				}
			}
		}
		if local {
			continue
		}
		if e.sess.Deliver(d) {
			n++
		} else if d.QoS > 0 || e.sess.Online() {
			s.stats.dropped.Add(1)
		}
	}
	clear(subs)
	*bp = subs[:0]
	matchPool.Put(bp)
	return n
}
