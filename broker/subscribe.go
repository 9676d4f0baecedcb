package broker

import (
	"fmt"
	"slices"
	"time"

	"gatemq/broker/packet"
	"gatemq/session"
)

// handleSubscribe adds the subscriptions, answers SUBACK and then sends
// the retained messages their retain handling asks for.
func (c *conn) handleSubscribe(p *packet.Subscribe) error {
	var id uint32
	if len(p.Properties.SubscriptionIDs) > 0 {
		id = p.Properties.SubscriptionIDs[0]
	}
	ack := &packet.Suback{PacketID: p.PacketID, Reasons: make([]packet.Reason, len(p.Subscriptions))}
	var (
		retained []session.Delivery
		now      = time.Now().UnixNano()
		err      error
	)
	if !c.srv.opts.DisableRetain {
		// Subscribing, taking the retained snapshot [MQTT-3.3.1-6] and
		// queueing it happen under the retained store's read lock, and
		// publishing a retained message routes it under the write lock.
		// So each retained message arrives once, from the snapshot or
		// live, and a newer one published meanwhile comes after the
		// snapshot, not before it. SUBACK is queued before the snapshot.
		c.srv.retained.mu.RLock()
		defer c.srv.retained.mu.RUnlock()
	}
	for i, s := range p.Subscriptions {
		if ack.Reasons[i], retained, err = c.subscribeLocked(s, id, now, retained); err != nil {
			return err
		}
	}
	// SUBACK goes after the commit of what it acknowledges: a durable
	// session's subscriptions, which must survive a crash, and the read
	// positions of a client new to the pubsub rules (from now), which
	// must not count as new again after a crash and skip what was
	// published since.
	persisted := c.srv.persistSubscribed(c.sess, func(err error) {
		if err != nil {
			c.srv.log.Error("persist subscriptions: refused", logClientID, c.clientID, logErr, err)
			for i := range ack.Reasons {
				ack.Reasons[i] = packet.UnspecifiedError
			}
		}
		c.send(ack)
	})
	if !persisted {
		c.send(ack)
	}
	c.deliverRetained(retained)
	return nil
}

// subscribeLocked adds one subscription, with identifier id, to c's
// session as a filter of a SUBSCRIBE: it checks the filter, the
// configuration, the ACL and the limits, and returns the reason for the
// SUBACK (the granted QoS, or why it was refused) with retained extended
// by the retained messages the subscription's retain handling asks for,
// matched at now. The retained store's read lock must be held unless
// retained messages are off. A non-nil error is a protocol error that
// ends the connection.
func (c *conn) subscribeLocked(s packet.Subscription, id uint32, now int64, retained []session.Delivery) (packet.Reason, []session.Delivery, error) {
	if err := packet.ValidTopicFilter(s.Filter); err != nil {
		// Refused alone, 0x80 in 3.x [MQTT-4.7.1-1, MQTT-4.7.1-2, MQTT-4.8.2-1, MQTT-4.8.2-2].
		return packet.TopicFilterInvalid, retained, nil
	}
	if slices.Contains(c.srv.opts.DenySubscribe, s.Filter) {
		return packet.UnspecifiedError, retained, nil // refused by configuration
	}
	if !c.canSubscribe(s.Filter) {
		c.srv.log.Debug("subscribe denied by ACL", logClientID, c.clientID, logUsername, c.username, logTopic, s.Filter)
		return packet.NotAuthorized, retained, nil // 0x80 in 3.x
	}
	_, filter, shared := splitShared(s.Filter)
	if shared && s.NoLocal {
		return 0, retained, fmt.Errorf("no local on shared subscription %q: %w", s.Filter, packet.ProtocolError) // [MQTT-3.8.3-4]
	}
	if r := c.checkSubscribeLimits(s.Filter); r != packet.Success {
		return r, retained, nil // max_topic_levels 0x8F, max_subscriptions 0x97; 0x80 in 3.x
	}
	s.QoS = min(s.QoS, c.srv.opts.MaxQoS) // the granted QoS may be lower [MQTT-3.9.3-1]
	sub := session.Subscription{Subscription: s, ID: id}
	existed := c.sess.Subscribe(sub) // replaces one with the same filter [MQTT-3.8.4-3]
	c.srv.topics.subscribe(c.sess, sub)
	// Retained messages: never for a shared subscription; retain
	// handling 1 only for a new subscription, 2 never [MQTT-3.3.1-9..11].
	if shared || c.srv.opts.DisableRetain || s.RetainHandling == 2 || (s.RetainHandling == 1 && existed) {
		return packet.Reason(s.QoS), retained, nil
	}
	for _, m := range c.srv.retained.matchLocked(filter, now, nil) {
		d := session.Delivery{Msg: m, QoS: min(m.QoS, sub.QoS), Retain: true} // [MQTT-3.3.1-8]
		if sub.ID != 0 {
			d.SubIDs = []uint32{sub.ID}
		}
		retained = append(retained, d)
	}
	return packet.Reason(s.QoS), retained, nil
}

// persistSubscribed commits what new subscriptions of sess change in
// the store and calls done (may be nil) after the commit: a durable
// session's subscriptions, new filters reading from the streams' current
// heads, and the read positions of a client new to the pubsub rules
// (loaded on its first subscription to their topics: what follows them
// comes, then live traffic). It reports false, without calling done,
// when there is nothing to commit.
func (s *Server) persistSubscribed(sess *session.Session, done func(error)) bool {
	pr := s.startPubsub(sess)
	switch {
	case s.opts.Store != nil && sess.IsDurable():
		if pr != nil {
			s.savePositions(sess, pr, true, nil) // in the commit below or an earlier one
		}
		s.startReadsAtHead(sess)
		s.saveSession(sess, done)
		return true
	case pr != nil:
		s.savePositions(sess, pr, true, done)
		return true
	}
	return false
}

// deliverRetained queues the retained messages of new subscriptions.
func (c *conn) deliverRetained(retained []session.Delivery) {
	for _, d := range retained {
		if !c.sess.Deliver(d) {
			c.srv.stats.dropped.Add(1)
		}
	}
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK.
func (c *conn) handleUnsubscribe(p *packet.Unsubscribe) {
	ack := &packet.Unsuback{PacketID: p.PacketID, Reasons: make([]packet.Reason, len(p.Filters))}
	for i, f := range p.Filters {
		if err := packet.ValidTopicFilter(f); err != nil {
			ack.Reasons[i] = packet.TopicFilterInvalid
			continue
		}
		if !c.srv.unsubscribe(c.sess, f) {
			ack.Reasons[i] = packet.NoSubscriptionExisted
		}
	}
	c.send(ack)
}

// unsubscribe removes sess's subscription to filter and reports whether
// it had one.
func (s *Server) unsubscribe(sess *session.Session, filter string) bool {
	had := sess.Unsubscribe(filter)
	s.topics.unsubscribe(sess, filter)
	return had
}
