package packet

import (
	"fmt"
	"slices"
)

// Subscription option bits [MQTT-3.8.3.1 in v5]; 3.x has only the QoS.
const (
	subQoS               = 0x03
	subNoLocal           = 0x04
	subRetainAsPublished = 0x08
	subRetainHandling    = 0x30 // two bits, shifted by 4
	subReservedV5        = 0xc0
	subReservedV3        = 0xfc
)

// decode decodes a SUBSCRIBE. Topic filters are checked only for UTF-8
// here: the server checks each with ValidTopicFilter so that it can
// refuse that filter alone in the SUBACK (0x8F, or 0x80 in 3.x) rather
// than close the connection.
func (pk *Subscribe) decode(body []byte, v Version, maxUser int) error {
	r := reader{b: body, maxUser: maxUser}
	var err error
	if pk.PacketID, err = r.packetID(); err != nil {
		return err
	}
	if v == V5 {
		if err := r.props(&pk.Properties, forSubscribe); err != nil {
			return fmt.Errorf("read properties: %w", err)
		}
	}
	for r.len() > 0 {
		var s Subscription
		// [MQTT-3.8.3-1]
		if s.Filter, err = r.string("topic filter"); err != nil {
			return err
		}
		opts, err := r.byte("subscription options")
		if err != nil {
			return err
		}
		s.QoS = opts & subQoS
		if v == V5 {
			if opts&subReservedV5 != 0 {
				// [MQTT-3.8.3-5] (v5)
				return fmt.Errorf("read subscription options: reserved bits set: %w", MalformedPacket)
			}
			if s.QoS == 3 {
				// v5 3.8.3.1
				return fmt.Errorf("read subscription options: qos 3: %w", ProtocolError)
			}
			s.NoLocal = opts&subNoLocal != 0
			s.RetainAsPublished = opts&subRetainAsPublished != 0
			s.RetainHandling = opts & subRetainHandling >> 4
			if s.RetainHandling == 3 {
				// v5 3.8.3.1
				return fmt.Errorf("read subscription options: retain handling 3: %w", ProtocolError)
			}
			if _, _, shared := SharedFilter(s.Filter); shared && s.NoLocal {
				// [MQTT-3.8.3-4] (v5)
				return fmt.Errorf("read subscription options: no local on shared subscription: %w", ProtocolError)
			}
		} else if opts&subReservedV3 != 0 || s.QoS == 3 {
			// [MQTT-3.8.3-4] (3.1.1): reserved bits or qos 3.
			return fmt.Errorf("read subscription options %08b: %w", opts, MalformedPacket)
		}
		pk.Subscriptions = append(pk.Subscriptions, s)
	}
	if len(pk.Subscriptions) == 0 {
		// [MQTT-3.8.3-3] (v5: MQTT-3.8.3-2)
		return fmt.Errorf("no topic filters: %w", ProtocolError)
	}
	return nil
}

func (pk *Subscribe) remaining(v Version) (n, plen int) {
	n = 2
	if v == V5 {
		plen = pk.Properties.size(forSubscribe)
		n += varintLen(plen) + plen
	}
	for i := range pk.Subscriptions {
		n += 2 + len(pk.Subscriptions[i].Filter) + 1
	}
	return n, plen
}

func appendSubscribe(b []byte, pk *Subscribe, v Version) []byte {
	n, plen := pk.remaining(v)
	b = slices.Grow(b, 1+varintLen(n)+n)
	b = appendHeader(b, SUBSCRIBE, 0x2, n) // [MQTT-3.8.1-1]
	b = appendUint16(b, pk.PacketID)
	if v == V5 {
		b = pk.Properties.appendProps(b, forSubscribe, plen)
	}
	for i := range pk.Subscriptions {
		s := &pk.Subscriptions[i]
		opts := s.QoS & subQoS
		if v == V5 {
			if s.NoLocal {
				opts |= subNoLocal
			}
			if s.RetainAsPublished {
				opts |= subRetainAsPublished
			}
			opts |= s.RetainHandling & 3 << 4
		}
		b = appendString(b, s.Filter)
		b = append(b, opts)
	}
	return b
}
