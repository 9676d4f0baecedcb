package packet

import "fmt"

// decodeEmpty checks the body of a packet that has none: PINGREQ,
// PINGRESP [MQTT-3.12, MQTT-3.13] and the 3.x DISCONNECT [MQTT-3.14].
func decodeEmpty(body []byte) error {
	if len(body) != 0 {
		return fmt.Errorf("remaining length %d, want 0: %w", len(body), MalformedPacket)
	}
	return nil
}

// appendEmpty appends a packet without a body: PINGREQ or PINGRESP.
func appendEmpty(b []byte, t Type) []byte {
	return append(b, byte(t)<<4, 0)
}
