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

	reason := packet.Success
	switch {
	case strings.HasPrefix(p.Topic, "$SYS"):
		// Only the broker publishes $SYS topics.
		reason = packet.NotAuthorized
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
			m.Props = packet.Properties{
				Present:         props.Present & forwardProps,
				PayloadFormat:   props.PayloadFormat,
				ContentType:     props.ContentType,
				ResponseTopic:   props.ResponseTopic,
				CorrelationData: props.CorrelationData,
				User:            props.User,
			}
			if props.Present.Has(packet.PropMessageExpiry) {
				m.Expires = time.Now().Add(time.Duration(props.MessageExpiry) * time.Second).UnixNano()
			}
		}
		switch p.QoS {
		case 0, 1:
			if c.srv.publish(m) == 0 && p.QoS == 1 {
				reason = packet.NoMatchingSubscribers
			}
		case 2:
			dup, full := c.sess.ReceiveQoS2(p.PacketID, c.srv.opts.MaxInflight)
			if full {
				return fmt.Errorf("%d QoS 2 messages awaiting PUBREL: %w", c.srv.opts.MaxInflight, packet.ReceiveMaximumExceeded) // [MQTT-3.3.4-9]
			}
			if !dup { // exactly once: a resent PUBLISH is not delivered again [MQTT-4.3.3-10]
				if c.srv.publish(m) == 0 {
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
	switch p.QoS {
	case 1:
		c.send(&packet.Puback{PacketID: p.PacketID, Reason: reason})
	case 2:
		c.send(&packet.Pubrec{PacketID: p.PacketID, Reason: reason})
	}
	return nil
}
