package session

import "gatemq/broker/packet"

// Subscription is one subscription of a session: the filter as the client
// sent it (with any $share/ prefix), its options and its identifier.
type Subscription struct {
	packet.Subscription
	ID uint32 // subscription identifier, 0 for none
}
