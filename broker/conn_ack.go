package broker

import (
	"sync"

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

	// A QoS 1 acknowledgement is the slot itself (pk == the slot; see
	// Type): its packet identifier and reason code, which is all a PUBACK
	// of the broker's carries. A packet.Puback here, with its 272 bytes of
	// Properties, made the slot a third of all a durable PUBLISH
	// allocated.
	id     uint16
	reason packet.Reason
}

// Type makes a slot the PUBACK it holds: appendControl encodes it.
func (a *ackSlot) Type() packet.Type { return packet.PUBACK }

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
// writer goroutine and does not block. The ready acknowledgements are
// written once the store has answered the whole batch (ackGroup), or at
// once (signalStored) when the answer came outside a batch.
func (c *conn) storeDone(a *ackSlot, err error) {
	c.outMu.Lock()
	a.done, a.err = true, err
	if c.flushAcksLocked() && !c.srv.acks.add(c) {
		c.signalStored()
	}
}

// ackGroup gathers the connections whose acknowledgements became ready
// while the store answered a batch of messages, and writes each once
// when the batch is answered: one write per publisher per commit. Written
// as each message's answer came, 50 publishers with 10 messages in
// flight each made a write per message, more CPU than the goroutines
// that wrote them before. It is the store's GroupDone function.
type ackGroup struct {
	mu    sync.Mutex
	open  bool    // the store is answering a batch
	conns []*conn // each once (conn.ackQueued)
	spare []*conn // run's, for the next batch
}

// add queues c for the end of the batch being answered. It reports false
// when none is: the caller writes.
func (g *ackGroup) add(c *conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		return false
	}
	if !c.ackQueued {
		c.ackQueued = true
		g.conns = append(g.conns, c)
	}
	return true
}

// run makes the store's calls for a batch, then writes what they made
// ready, each connection once.
func (g *ackGroup) run(calls func()) {
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
	calls()
	g.mu.Lock()
	g.open = false
	conns := g.conns
	g.conns = g.spare[:0]
	for _, c := range conns {
		c.ackQueued = false
	}
	g.mu.Unlock()
	for i, c := range conns {
		c.signalStored()
		conns[i] = nil
	}
	g.spare = conns[:0] // only the store's one writer goroutine runs run
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
	case *ackSlot:
		p.reason = r
	case *packet.Puback:
		p.Reason = r
	case *packet.Pubrec:
		p.Reason = r
	}
}
