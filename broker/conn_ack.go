package broker

import (
	"gatemq/broker/packet"
)

// ackSlot holds a PUBACK or PUBREC in the order its PUBLISH arrived. A
// message stored for durable sessions is acknowledged only after the
// commit that holds it; acknowledgements of later messages wait behind
// it, as they must go in the order the PUBLISHes came [MQTT-4.6.0-2,3].
type ackSlot struct {
	c       *conn
	pk      packet.Packet // set by the reader once the PUBLISH is handled
	waiting bool          // the message is being stored
	done    bool          // the store has answered
	err     error         // the store's answer
	onFail  func()        // undoes what the PUBLISH recorded, on a failed store

	// A QoS 1 acknowledgement itself, kept here so that such a PUBLISH
	// costs one allocation for its slot and packet together. (Not a
	// PUBREC as well: with its Properties that doubled the slot, some
	// 300 bytes more to allocate for every message.)
	puback packet.Puback
}

// stored implements storeListener: the store's answer for the slot's
// message.
func (a *ackSlot) stored(err error) { a.c.storeDone(a, err) }

// reserveAck takes the next acknowledgement slot. It runs on the reader.
func (c *conn) reserveAck() *ackSlot {
	a := &ackSlot{c: c}
	c.outMu.Lock()
	c.acks = append(c.acks, a)
	c.outMu.Unlock()
	return a
}

// fillAck gives a slot its packet; waiting says whether a store commit
// must come first. It runs on the reader, which writes what became ready
// with its other replies (flushReplies), as reply does: a durable
// PUBLISH, whose slot waits for the commit, wakes no writer.
func (c *conn) fillAck(a *ackSlot, pk packet.Packet, waiting bool) {
	c.outMu.Lock()
	a.pk, a.waiting = pk, waiting
	if c.flushAcksLocked() {
		c.pending.Store(true)
	}
}

// storeDone records the store's answer for a slot. It runs on the store's
// writer goroutine and does not block; signalStored may write the ready
// acknowledgements there and then.
func (c *conn) storeDone(a *ackSlot, err error) {
	c.outMu.Lock()
	a.done, a.err = true, err
	if c.flushAcksLocked() {
		c.signalStored()
	}
}

// flushAcksLocked moves the acknowledgements that are ready, in order,
// to the writer; it is called with outMu held and releases it. It
// reports whether it moved any to a connection still open, for the
// caller to tell the writer. A message that could not be stored is never
// acknowledged as stored: v5 gets its reason code (0x97 for the quota,
// 0x80 otherwise); 3.x, which has no way to say no, loses the connection.
func (c *conn) flushAcksLocked() bool {
	fail, moved := false, false
	for len(c.acks) > 0 {
		a := c.acks[0]
		if a.pk == nil || (a.waiting && !a.done) {
			break
		}
		c.acks[0] = nil
		c.acks = c.acks[1:]
		if a.err != nil {
			if a.onFail != nil {
				a.onFail()
			}
			if c.version != packet.V5 {
				fail = true
				break
			}
			setAckReason(a.pk, ackReasonFor(a.err))
		}
		c.ctl = append(c.ctl, a.pk)
		moved = true
	}
	c.outMu.Unlock()
	if fail {
		c.srv.log.Warn("closing 3.x connection: a message could not be stored and 3.x has no negative acknowledgement",
			logClientID, c.clientID)
		c.setWhy(closeServerError)
		c.closeSocket()
		return false
	}
	select {
	case <-c.done:
		return false // closed: nothing more is written
	default:
	}
	return moved
}

func setAckReason(pk packet.Packet, r packet.Reason) {
	switch p := pk.(type) {
	case *packet.Puback:
		p.Reason = r
	case *packet.Pubrec:
		p.Reason = r
	}
}
