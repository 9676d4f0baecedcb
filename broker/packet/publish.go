package packet

import (
	"bytes"
	"fmt"
	"slices"
)

// Publish fixed-header flag bits [MQTT-3.3.1].
const (
	publishRetain = 0x1
	publishQoS    = 0x6 // two bits, shifted by 1
	publishDup    = 0x8
)

// decode decodes a PUBLISH whose header flags checkHeader accepted. Only
// the topic is copied; Payload and CorrelationData alias body.
func (pk *Publish) decode(h Header, body []byte, v Version, maxUser int) error {
	pk.Retain = h.Flags&publishRetain != 0
	pk.QoS = h.Flags & publishQoS >> 1
	pk.Dup = h.Flags&publishDup != 0
	r := reader{b: body, maxUser: maxUser}
	// [MQTT-3.3.2-1]: a UTF-8 string.
	topic, err := r.utf8("topic name")
	if err != nil {
		return err
	}
	if pk.QoS > 0 {
		if pk.PacketID, err = r.packetID(); err != nil {
			return err
		}
	}
	if v == V5 {
		if err := r.props(&pk.Properties, forPublish); err != nil {
			return fmt.Errorf("read properties: %w", err)
		}
	}
	if len(topic) == 0 {
		if v != V5 {
			// [MQTT-4.7.3-1]
			return fmt.Errorf("read topic name: empty: %w", MalformedPacket)
		}
		if !pk.Properties.Present.Has(PropTopicAlias) {
			// v5 3.3.2.3.4: an empty topic needs a Topic Alias.
			return fmt.Errorf("read topic name: empty without topic alias: %w", ProtocolError)
		}
	}
	if bytes.IndexByte(topic, '+') >= 0 || bytes.IndexByte(topic, '#') >= 0 {
		// [MQTT-3.3.2-2]
		return fmt.Errorf("read topic name: wildcard character: %w", TopicNameInvalid)
	}
	pk.Topic = string(topic)
	pk.Payload = r.rest()
	return nil
}

func (pk *Publish) flags() byte {
	f := pk.QoS & 3 << 1
	if pk.Dup {
		f |= publishDup
	}
	if pk.Retain {
		f |= publishRetain
	}
	return f
}

func (pk *Publish) remaining(v Version) (n, plen int) {
	n = 2 + len(pk.Topic) + len(pk.Payload)
	if pk.QoS > 0 {
		n += 2
	}
	if v == V5 {
		plen = pk.Properties.size(forPublish)
		n += varintLen(plen) + plen
	}
	return n, plen
}

func appendPublish(b []byte, pk *Publish, v Version) []byte {
	n, plen := pk.remaining(v)
	b = slices.Grow(b, 1+varintLen(n)+n)
	b = appendHeader(b, PUBLISH, pk.flags(), n)
	b = appendString(b, pk.Topic)
	if pk.QoS > 0 {
		b = appendUint16(b, pk.PacketID)
	}
	if v == V5 {
		b = pk.Properties.appendProps(b, forPublish, plen)
	}
	return append(b, pk.Payload...)
}
