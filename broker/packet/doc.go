// Package packet is the MQTT wire codec: it reads, decodes, sizes and
// encodes every control packet of MQTT 3.1, 3.1.1 and 5.0, in both
// directions. It knows nothing of connections or sessions; the broker
// calls Read (or ReadHeader and Decode) on its reader goroutine and
// Append on its writer goroutine. The package keeps no state: its
// functions are safe for concurrent use as long as each call has its own
// reader and the packets are not modified meanwhile.
//
// # Versions
//
// The Version is the protocol level of CONNECT: V31 (3, protocol name
// "MQIsdp"), V311 (4, "MQTT") or V5 (5, "MQTT"). Decode and Append take
// the version negotiated on the connection; for CONNECT, Decode uses the
// level in the packet. The packet types are those of v5: for 3.x the
// properties are neither read nor written and stay zero, and reason codes
// are mapped where 3.x has codes of its own. Connack.Reason is always a
// v5 reason code, mapped to and from the 3.x CONNACK return code
// (Success 0, UnsupportedProtocolVersion 1, ClientIdentifierNotValid 2,
// BadUserNameOrPassword 4, NotAuthorized 5, any other failure 3, server
// unavailable). A 3.x SUBACK carries 0, 1, 2 or 0x80 (any failure); a
// 3.x UNSUBACK has no reasons and a 3.x DISCONNECT no body. AUTH exists
// only in v5.
//
// Properties.Present has a bit for each property decoded, User Property
// and Subscription Identifier included. When encoding, a property is
// written when its bit is set, except User Property and Subscription
// Identifier, which are written when their slices are non-empty.
//
// # Aliasing
//
// Decoded packets alias the body slice given to Decode (or read by Read)
// for their []byte fields: Publish.Payload, Connect.WillPayload,
// Connect.Password, Properties.CorrelationData and Properties.AuthData.
// The caller must not reuse the body while the packet is in use; Read
// allocates a new body for every packet. Strings are always copies. An
// empty []byte field decodes as nil.
//
// Append writes into the caller's slice and allocates nothing else, so a
// writer can reuse one buffer for every packet. Size gives the encoded
// size without encoding, for the client's Maximum Packet Size.
//
// # Errors
//
// Every error from the decoder wraps a Reason with %w, so the connection
// loop picks its CONNACK or DISCONNECT code with errors.As, and names the
// packet and field ("decode PUBLISH: read topic name: invalid UTF-8:
// malformed packet"):
//
//   - MalformedPacket: bytes that cannot be parsed, or that break a rule
//     of the format: reserved bits, lengths past the end, bytes after the
//     last field, invalid UTF-8, a property the packet cannot carry, a
//     reason code the packet cannot carry.
//   - ProtocolError: what the specification calls a Protocol Error: a
//     duplicated property, a property value out of range (Receive Maximum
//     0 and the like), SUBSCRIBE or UNSUBSCRIBE without filters.
//   - TopicNameInvalid: wildcards in a PUBLISH topic, will topic or
//     Response Topic.
//   - UnsupportedProtocolVersion: a CONNECT protocol level other than 3,
//     4 or 5, or a protocol name that does not match the level. The
//     partly decoded *Connect is returned with the error, as for any error
//     after the level, so that the server can answer in the client's
//     version.
//   - PacketTooLarge: from Read, a packet over its maxSize.
//   - QuotaExceeded: from DecodeOptions.Decode, a packet over one of the
//     limits it sets (more User Properties than MaxUserProperties).
//
// I/O errors from Read are returned wrapped, io.EOF unwrapped when the
// stream ends cleanly between packets. Decoding never panics.
//
// What needs session state is left to the broker: topic alias ranges,
// Receive Maximum accounting, Subscription Identifiers sent by a client,
// client identifier rules, and the syntax of SUBSCRIBE and UNSUBSCRIBE
// filters, which the broker checks with ValidTopicFilter so that it can
// refuse one filter in the SUBACK or UNSUBACK instead of disconnecting.
//
// Append does not validate; it panics only on programmer errors (a field
// longer than 65535 bytes, a packet over MaxVarint, a foreign Packet).
package packet
