package broker

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gatemq/broker/packet"
	"gatemq/session"
)

// handlePublish routes an incoming PUBLISH and acknowledges it.
func (c *conn) handlePublish(p *packet.Publish) error {
	o := &c.srv.opts
	c.srv.stats.publishRecv.Add(1)
	c.srv.stats.byQoS.in(p.QoS, len(p.Payload))
	if p.QoS > o.MaxQoS {
		return fmt.Errorf("PUBLISH QoS %d: %w", p.QoS, packet.QoSNotSupported) // [MQTT-3.2.2-11]
	}
	if p.Retain && o.DisableRetain {
		return fmt.Errorf("PUBLISH retain: %w", packet.RetainNotSupported) // [MQTT-3.2.2-14]
	}
	props := &p.Properties
	if len(props.SubscriptionIDs) > 0 {
		// Only the server sets Subscription Identifiers [MQTT-3.3.4-6].
		return fmt.Errorf("PUBLISH with subscription identifier: %w", packet.ProtocolError)
	}
	if props.Present.Has(packet.PropTopicAlias) {
		a := props.TopicAlias
		if a == 0 || a > o.TopicAliasMax {
			return fmt.Errorf("topic alias %d: %w", a, packet.TopicAliasInvalid) // [MQTT-3.3.2-8/9]
		}
		if p.Topic == "" {
			t, ok := c.aliasIn[a]
			if !ok {
				return fmt.Errorf("unknown topic alias %d: %w", a, packet.ProtocolError)
			}
			p.Topic = t
		} else {
			if c.aliasIn == nil {
				c.aliasIn = make(map[uint16]string)
			}
			c.aliasIn[a] = p.Topic
		}
	}

	// With durable storage, a QoS 1 or 2 acknowledgement takes its place
	// in line now: it may have to wait for a commit.
	var (
		slot   *ackSlot
		stored bool
	)
	if c.srv.opts.Store != nil && p.QoS > 0 {
		slot = c.reserveAck()
	}
	reason := packet.Success
	switch {
	case strings.HasPrefix(p.Topic, "$SYS"):
		// Only the broker publishes $SYS topics.
		reason = packet.NotAuthorized
	case !c.canPublish(p.Topic):
		c.srv.log.Debug("publish denied by ACL", logClientID, c.clientID, logUsername, c.username, logTopic, p.Topic)
		reason = packet.NotAuthorized // 3.x: acknowledged and dropped below [MQTT-3.3.5-2]
	case props.Present.Has(packet.PropPayloadFormat) && props.PayloadFormat == 1 && !utf8.Valid(p.Payload):
		reason = packet.PayloadFormatInvalid // v5 3.3.2.3.2
	}
	if reason == packet.Success {
		m := &session.Message{
			Topic:   p.Topic,
			Payload: p.Payload,
			QoS:     p.QoS,
			Retain:  p.Retain,
			From:    c.clientID,
		}
		if c.version == packet.V5 {
			if props.Present&forwardProps != 0 || len(props.User) > 0 {
				m.Props = &packet.Properties{
					Present:         props.Present & forwardProps,
					PayloadFormat:   props.PayloadFormat,
					ContentType:     props.ContentType,
					ResponseTopic:   props.ResponseTopic,
					CorrelationData: props.CorrelationData,
					User:            props.User,
				}
			}
			if props.Present.Has(packet.PropMessageExpiry) {
				m.Expires = time.Now().Add(time.Duration(props.MessageExpiry) * time.Second).UnixNano()
			}
		}
		switch p.QoS {
		case 0, 1:
			n, st := c.srv.publishThen(m, c.onStored(slot, nil))
			stored = st
			if n == 0 && p.QoS == 1 {
				reason = packet.NoMatchingSubscribers
			}
		case 2:
			dup, full := c.sess.ReceiveQoS2(p.PacketID, c.lim.MaxInflight)
			if full {
				return fmt.Errorf("%d QoS 2 messages awaiting PUBREL: %w", c.lim.MaxInflight, packet.ReceiveMaximumExceeded) // [MQTT-3.3.4-9]
			}
			if !dup { // exactly once: a resent PUBLISH is not delivered again [MQTT-4.3.3-10]
				id := p.PacketID
				var once []byte
				if c.srv.opts.Store != nil && c.sess.IsDurable() {
					once = onceKey(c.clientID, id)
				}
				n, st := c.srv.publishOnce(m, once, c.onStored(slot, func() { c.sess.ReleaseQoS2(id) }))
				stored = st
				if n == 0 {
					reason = packet.NoMatchingSubscribers
				}
			}
		}
	}
	if c.version != packet.V5 && reason.Failed() {
		// 3.x cannot say no: acknowledge as usual and drop [MQTT-3.3.5-2].
		reason = packet.Success
	}
	if c.version != packet.V5 && reason == packet.NoMatchingSubscribers {
		reason = packet.Success
	}
	var ack packet.Packet
	switch {
	case p.QoS == 1 && slot != nil:
		slot.id, slot.reason = p.PacketID, reason
		ack = slot
	case p.QoS == 1:
		ack = &packet.Puback{PacketID: p.PacketID, Reason: reason}
	case p.QoS == 2:
		ack = &packet.Pubrec{PacketID: p.PacketID, Reason: reason}
	default:
		return nil
	}
	if slot != nil {
		// Behind earlier acknowledgements, and after the commit when the
		// message went to durable storage.
		c.fillAck(slot, ack, stored)
	} else {
		c.reply(ack)
	}
	return nil
}

// onStored returns what hears the store's answer for a stored message:
// the message's acknowledgement slot, which undoes what the PUBLISH
// recorded when the write failed. Without a slot nothing listens: there
// is no store, or the message is QoS 0 and nothing waits for it.
func (c *conn) onStored(slot *ackSlot, undo func()) storeListener {
	if slot == nil {
		return nil
	}
	slot.onFail = undo
	return slot
}
