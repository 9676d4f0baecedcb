package packet

import (
	"fmt"
	"slices"
)

// Connect flag bits [MQTT-3.1.2.3].
const (
	connectReserved   = 0x01
	connectCleanStart = 0x02
	connectWill       = 0x04
	connectWillQoS    = 0x18 // two bits, shifted by 3
	connectWillRetain = 0x20
	connectPassword   = 0x40
	connectUsername   = 0x80
)

// protocolName returns the protocol name that goes with level v.
func protocolName(v Version) string {
	if v == V31 {
		return "MQIsdp"
	}
	return "MQTT"
}

// decodeConnect decodes a CONNECT body. Once the protocol name and level
// are read it returns the Connect even on error, so that the server can
// answer in the client's version.
func decodeConnect(body []byte, maxUser int) (*Connect, error) {
	r := reader{b: body, maxUser: maxUser}
	name, err := r.string("protocol name")
	if err != nil {
		return nil, err
	}
	level, err := r.byte("protocol level")
	if err != nil {
		return nil, err
	}
	pk := &Connect{ProtocolName: name, Version: Version(level)}
	switch pk.Version {
	case V31, V311, V5:
		if name != protocolName(pk.Version) {
			// [MQTT-3.1.2-1]: a wrong name for the level. We answer
			// as for an unknown level, which v5 3.1.2.1 allows.
			return pk, fmt.Errorf("protocol name %q with level %d: %w", name, level, UnsupportedProtocolVersion)
		}
	default:
		// [MQTT-3.1.2-2]
		return pk, fmt.Errorf("protocol level %d: %w", level, UnsupportedProtocolVersion)
	}
	return pk, pk.decodeRest(&r)
}

// decodeRest decodes what follows the protocol level.
func (pk *Connect) decodeRest(r *reader) error {
	v5 := pk.Version == V5
	flags, err := r.byte("connect flags")
	if err != nil {
		return err
	}
	if flags&connectReserved != 0 {
		// [MQTT-3.1.2-3]
		return fmt.Errorf("connect flags: reserved bit set: %w", MalformedPacket)
	}
	pk.CleanStart = flags&connectCleanStart != 0
	pk.WillFlag = flags&connectWill != 0
	pk.WillQoS = flags & connectWillQoS >> 3
	pk.WillRetain = flags&connectWillRetain != 0
	pk.PasswordFlag = flags&connectPassword != 0
	pk.UsernameFlag = flags&connectUsername != 0
	if pk.WillQoS == 3 {
		// [MQTT-3.1.2-14] (v5: MQTT-3.1.2-12)
		return fmt.Errorf("connect flags: will qos 3: %w", MalformedPacket)
	}
	if !pk.WillFlag && (pk.WillQoS != 0 || pk.WillRetain) {
		// [MQTT-3.1.2-13], [MQTT-3.1.2-15] (v5: MQTT-3.1.2-11, MQTT-3.1.2-13)
		return fmt.Errorf("connect flags: will qos or retain without will: %w", MalformedPacket)
	}
	if !v5 && pk.PasswordFlag && !pk.UsernameFlag {
		// [MQTT-3.1.2-22]; v5 allows a password alone.
		return fmt.Errorf("connect flags: password without user name: %w", MalformedPacket)
	}
	if pk.KeepAlive, err = r.uint16("keep alive"); err != nil {
		return err
	}
	if v5 {
		if err := r.props(&pk.Properties, forConnect); err != nil {
			return fmt.Errorf("read properties: %w", err)
		}
		if pk.Properties.Present.Has(PropAuthData) && !pk.Properties.Present.Has(PropAuthMethod) {
			// v5 3.1.2.11.10
			return fmt.Errorf("read properties: authentication data without method: %w", ProtocolError)
		}
	}
	// [MQTT-3.1.3-4] (v5: MQTT-3.1.3-4): a UTF-8 string. Its length and
	// characters are for the server to judge [MQTT-3.1.3-5].
	if pk.ClientID, err = r.string("client identifier"); err != nil {
		return err
	}
	if pk.WillFlag {
		if v5 {
			if err := r.props(&pk.WillProperties, forWill); err != nil {
				return fmt.Errorf("read will properties: %w", err)
			}
		}
		// [MQTT-3.1.3-10] (v5: MQTT-3.1.3-11)
		if pk.WillTopic, err = r.string("will topic"); err != nil {
			return err
		}
		if err := ValidTopicName(pk.WillTopic); err != nil {
			return fmt.Errorf("read will topic: %w", err)
		}
		if pk.WillPayload, err = r.binary("will payload"); err != nil {
			return err
		}
	}
	if pk.UsernameFlag {
		// [MQTT-3.1.3-11] (v5: MQTT-3.1.3-12)
		if pk.Username, err = r.string("user name"); err != nil {
			return err
		}
	}
	if pk.PasswordFlag {
		if pk.Password, err = r.binary("password"); err != nil {
			return err
		}
	}
	return r.end()
}

// level returns the protocol name and level Append writes for version v:
// the packet's own when set, so that tests can send odd ones.
func (pk *Connect) level(v Version) (string, Version) {
	name, level := pk.ProtocolName, pk.Version
	if level == 0 {
		level = v
	}
	if name == "" {
		name = protocolName(level)
	}
	return name, level
}

func (pk *Connect) remaining(v Version) (n, plen, wlen int) {
	name, _ := pk.level(v)
	n = 2 + len(name) + 1 + 1 + 2 + 2 + len(pk.ClientID)
	if v == V5 {
		plen = pk.Properties.size(forConnect)
		n += varintLen(plen) + plen
	}
	if pk.WillFlag {
		if v == V5 {
			wlen = pk.WillProperties.size(forWill)
			n += varintLen(wlen) + wlen
		}
		n += 2 + len(pk.WillTopic) + 2 + len(pk.WillPayload)
	}
	if pk.UsernameFlag {
		n += 2 + len(pk.Username)
	}
	if pk.PasswordFlag {
		n += 2 + len(pk.Password)
	}
	return n, plen, wlen
}

func appendConnect(b []byte, pk *Connect, v Version) []byte {
	n, plen, wlen := pk.remaining(v)
	name, level := pk.level(v)
	var flags byte
	if pk.CleanStart {
		flags |= connectCleanStart
	}
	if pk.WillFlag {
		flags |= connectWill
	}
	flags |= pk.WillQoS & 3 << 3
	if pk.WillRetain {
		flags |= connectWillRetain
	}
	if pk.PasswordFlag {
		flags |= connectPassword
	}
	if pk.UsernameFlag {
		flags |= connectUsername
	}
	b = slices.Grow(b, 1+varintLen(n)+n)
	b = appendHeader(b, CONNECT, 0, n)
	b = appendString(b, name)
	b = append(b, byte(level), flags)
	b = appendUint16(b, pk.KeepAlive)
	if v == V5 {
		b = pk.Properties.appendProps(b, forConnect, plen)
	}
	b = appendString(b, pk.ClientID)
	if pk.WillFlag {
		if v == V5 {
			b = pk.WillProperties.appendProps(b, forWill, wlen)
		}
		b = appendString(b, pk.WillTopic)
		b = appendString(b, pk.WillPayload)
	}
	if pk.UsernameFlag {
		b = appendString(b, pk.Username)
	}
	if pk.PasswordFlag {
		b = appendString(b, pk.Password)
	}
	return b
}
