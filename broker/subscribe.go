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
		msgs     []*session.Message
		now      = time.Now().UnixNano()
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
		if err := packet.ValidTopicFilter(s.Filter); err != nil {
			// Refused alone, 0x80 in 3.x [MQTT-4.7.1-1, MQTT-4.7.1-2, MQTT-4.8.2-1, MQTT-4.8.2-2].
			ack.Reasons[i] = packet.TopicFilterInvalid
			continue
		}
		if slices.Contains(c.srv.opts.DenySubscribe, s.Filter) {
			ack.Reasons[i] = packet.UnspecifiedError // refused by configuration
			continue
		}
		if !c.canSubscribe(s.Filter) {
			c.srv.log.Debug("subscribe denied by ACL", logClientID, c.clientID, logUsername, c.username, logTopic, s.Filter)
			ack.Reasons[i] = packet.NotAuthorized // 0x80 in 3.x
			continue
		}
		_, filter, shared := splitShared(s.Filter)
		if shared && s.NoLocal {
			return fmt.Errorf("no local on shared subscription %q: %w", s.Filter, packet.ProtocolError) // [MQTT-3.8.3-4]
		}
		if r := c.checkSubscribeLimits(s.Filter); r != packet.Success {
			ack.Reasons[i] = r // max_topic_levels 0x8F, max_subscriptions 0x97; 0x80 in 3.x
			continue
		}
		s.QoS = min(s.QoS, c.srv.opts.MaxQoS) // the granted QoS may be lower [MQTT-3.9.3-1]
		sub := session.Subscription{Subscription: s, ID: id}
		existed := c.sess.Subscribe(sub) // replaces one with the same filter [MQTT-3.8.4-3]
		ack.Reasons[i] = packet.Reason(s.QoS)
		// Retained messages: never for a shared subscription; retain
		// handling 1 only for a new subscription, 2 never [MQTT-3.3.1-9..11].
		if shared || c.srv.opts.DisableRetain || s.RetainHandling == 2 || (s.RetainHandling == 1 && existed) {
			c.srv.topics.subscribe(c.sess, sub)
			continue
		}
		c.srv.topics.subscribe(c.sess, sub)
		msgs = c.srv.retained.matchLocked(filter, now, msgs[:0])
		for _, m := range msgs {
			d := session.Delivery{Msg: m, QoS: min(m.QoS, sub.QoS), Retain: true} // [MQTT-3.3.1-8]
			if sub.ID != 0 {
				d.SubIDs = []uint32{sub.ID}
			}
			retained = append(retained, d)
		}
	}
	// SUBACK goes after the commit of what it acknowledges: a durable
	// session's subscriptions, which must survive a crash, and the read
	// positions of a client new to the pubsub rules (from now), which
	// must not count as new again after a crash and skip what was
	// published since.
	ackAfter := func(msg string) func(error) {
		return func(err error) {
			if err != nil {
				c.srv.log.Error(msg, logClientID, c.clientID, logErr, err)
				for i := range ack.Reasons {
					ack.Reasons[i] = packet.UnspecifiedError
				}
			}
			c.send(ack)
		}
	}
	// A first subscription to a pubsub rule's topics loads the client
	// ID's read positions: what follows them comes, then live traffic.
	pr := c.srv.startPubsub(c.sess)
	switch {
	case c.srv.opts.Store != nil && c.sess.IsDurable():
		if pr != nil {
			c.srv.savePositions(c.sess, pr, true, nil) // in the commit below or an earlier one
		}
		// New filters read from the streams' current heads.
		c.srv.startReadsAtHead(c.sess)
		c.srv.saveSession(c.sess, ackAfter("persist subscriptions: refused"))
	case pr != nil:
		c.srv.savePositions(c.sess, pr, true, ackAfter("persist pubsub positions: refused"))
	default:
		c.send(ack)
	}
	for _, d := range retained {
		if !c.sess.Deliver(d) {
			c.srv.stats.dropped.Add(1)
		}
	}
	return nil
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK.
func (c *conn) handleUnsubscribe(p *packet.Unsubscribe) {
	ack := &packet.Unsuback{PacketID: p.PacketID, Reasons: make([]packet.Reason, len(p.Filters))}
	for i, f := range p.Filters {
		if err := packet.ValidTopicFilter(f); err != nil {
			ack.Reasons[i] = packet.TopicFilterInvalid
			continue
		}
		had := c.sess.Unsubscribe(f)
		c.srv.topics.unsubscribe(c.sess, f)
		if !had {
			ack.Reasons[i] = packet.NoSubscriptionExisted
		}
	}
	c.send(ack)
}
