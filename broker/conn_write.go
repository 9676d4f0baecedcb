package broker

import (
	"errors"
	"sync"
	"time"

	"gatemq/broker/packet"
	"gatemq/session"
)

// writeTimeout bounds one socket write: a client that stops reading is
// closed rather than holding its queue forever.
const writeTimeout = 30 * time.Second

// flushAt is the buffered size at which the writer writes before it has
// drained everything.
const flushAt = 64 << 10

var (
	wbufPool       = sync.Pool{New: func() any { b := make([]byte, 0, flushAt+4096); return &b }}
	deliveriesPool = sync.Pool{New: func() any { d := make([]session.Delivery, 0, 256); return &d }}
	errFinalSent   = errors.New("final packet sent")
)

// writeLoop is the connection's writer goroutine, started by signal. It
// writes everything there is to write and exits when nothing is left, so
// an idle connection has no writer goroutine. After a write error or the
// final DISCONNECT it leaves writing set, so no writer starts again.
func (c *conn) writeLoop() {
	defer c.srv.wg.Done()
	for {
		select {
		case <-c.done:
			return
		default:
		}
		c.pending.Store(false)
		if err := c.flush(); err != nil {
			c.writeFailed(err)
			return
		}
		if c.pending.Load() {
			continue
		}
		c.writing.Store(false)
		// A signal between the check above and the store saw writing
		// set and started nothing: take the work back.
		if !c.pending.Load() || !c.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

// writeFailed closes the connection after a failed write, or after the
// final DISCONNECT (errFinalSent). The caller leaves writing set, so no
// writer starts again.
func (c *conn) writeFailed(err error) {
	if !errors.Is(err, errFinalSent) && !errorIsClosed(err) {
		c.srv.log.Info("write", logClientID, c.clientID, logErr, err)
	}
	c.setWhy(closeNetwork)
	c.closeSocket()
}

// flush writes what a short write of signalStored left, the queued
// control packets and then what the session lets through, in that order
// and in as few writes as it can. Buffers come from pools and go back
// before it returns, so an idle connection holds none.
func (c *conn) flush() error {
	bp := wbufPool.Get().(*[]byte)
	dp := deliveriesPool.Get().(*[]session.Delivery)
	buf, ds := (*bp)[:0], (*dp)[:0]
	defer func() {
		*bp = buf[:0]
		wbufPool.Put(bp)
		clear(ds)
		*dp = ds[:0]
		deliveriesPool.Put(dp)
	}()
	if d := c.direct; d != nil && d.unsent != nil {
		buf = append(buf, d.unsent...)
		d.unsent = nil
	}
	var err error
	for {
		c.outMu.Lock()
		ctl, final := c.ctl, c.final
		c.ctl, c.ctlSpare = c.ctlSpare[:0], nil
		c.final = nil
		c.outMu.Unlock()

		buf = c.encodeControl(buf, ctl)
		n := len(ctl)
		if final == nil {
			now := time.Now().UnixNano()
			durable := c.srv.opts.Store != nil && c.sess.IsDurable()
			if durable {
				c.srv.refill(c.sess)
			}
			c.srv.fillOffline(c.sess, c.canReceive)
			ds = c.sess.Next(c, ds[:0], now, cap(ds))
			if durable && newStoredQoS2(ds) {
				// Recorded before sent: after a crash a QoS 2 message
				// goes again with the same packet identifier, so the
				// client knows it has it (exactly once). QoS 1
				// deliveries are not waited for: the session is saved
				// within a second (durableLoop), and one sent since is
				// read again from its held-back cursor after a crash,
				// which at least once allows.
				if err := c.srv.persistInflightSync(c.sess); err != nil {
					c.srv.log.Error("persist in-flight messages", logClientID, c.clientID, logErr, err)
					return err
				}
			}
			for i := range ds {
				buf = c.appendDelivery(buf, &ds[i], now)
			}
			n += len(ds)
		} else {
			buf = c.appendControl(buf, final)
		}
		if len(buf) >= flushAt || (n == 0 || final != nil) && len(buf) > 0 {
			if buf, err = c.write(buf); err != nil {
				return err
			}
		}
		if final != nil {
			return errFinalSent
		}
		if n == 0 {
			return nil
		}
	}
}

// encodeControl appends ctl, taken from c.ctl, to buf and gives its
// array back to c.ctl's next swap.
func (c *conn) encodeControl(buf []byte, ctl []packet.Packet) []byte {
	for i, pk := range ctl {
		buf = c.appendControl(buf, pk)
		ctl[i] = nil
	}
	c.outMu.Lock()
	c.ctlSpare = ctl[:0]
	c.outMu.Unlock()
	return buf
}

func (c *conn) write(buf []byte) ([]byte, error) {
	if err := c.nc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return buf, err
	}
	n, err := c.nc.Write(buf)
	c.srv.stats.bytesSent.Add(uint64(n))
	return buf[:0], err
}

// appendControl encodes a packet other than a delivery. A v5 client that
// asked for no problem information gets no reason string or user
// properties outside PUBLISH, CONNACK and DISCONNECT [MQTT-3.1.2-29], and
// anything over its Maximum Packet Size loses them first [MQTT-3.1.2-25].
func (c *conn) appendControl(buf []byte, pk packet.Packet) []byte {
	c.srv.stats.packetsSent.Add(1)
	if a, ok := pk.(*ackSlot); ok {
		return packet.AppendAck(buf, packet.PUBACK, a.id, a.reason, c.version)
	}
	if c.version == packet.V5 {
		if props := propsOf(pk); props != nil {
			t := pk.Type()
			if !c.problemInfo && t != packet.CONNACK && t != packet.DISCONNECT {
				stripProblem(props)
			}
			if c.maxOut > 0 && packet.Size(pk, c.version) > c.maxOut {
				stripProblem(props)
			}
		}
	}
	return packet.Append(buf, pk, c.version)
}

func stripProblem(p *packet.Properties) {
	p.Present.Del(packet.PropReasonString)
	p.ReasonString = ""
	p.User = nil
}

func propsOf(pk packet.Packet) *packet.Properties {
	switch p := pk.(type) {
	case *packet.Connack:
		return &p.Properties
	case *packet.Puback:
		return &p.Properties
	case *packet.Pubrec:
		return &p.Properties
	case *packet.Pubrel:
		return &p.Properties
	case *packet.Pubcomp:
		return &p.Properties
	case *packet.Suback:
		return &p.Properties
	case *packet.Unsuback:
		return &p.Properties
	case *packet.Disconnect:
		return &p.Properties
	}
	return nil
}

// appendDelivery encodes a PUBLISH (or, for a QoS 2 delivery awaiting
// PUBCOMP, a PUBREL) for this connection: v5 properties, the remaining
// message expiry, subscription identifiers and an outbound topic alias.
func (c *conn) appendDelivery(buf []byte, d *session.Delivery, now int64) []byte {
	if d.State == session.AwaitPubcomp {
		c.srv.stats.packetsSent.Add(1)
		return packet.Append(buf, &packet.Pubrel{PacketID: d.PacketID}, c.version)
	}
	m := d.Msg
	if !c.canReceive(m.Topic) {
		// The ACL forbids it, perhaps since a reload: discard it as if
		// delivered.
		c.srv.stats.dropped.Add(1)
		if d.PacketID != 0 {
			c.sess.Discard(d.PacketID)
		}
		return buf
	}
	p := packet.Publish{
		Dup:      d.Dup,
		QoS:      d.QoS,
		Retain:   d.Retain,
		Topic:    m.Topic,
		PacketID: d.PacketID,
		Payload:  m.Payload,
	}
	if c.version == packet.V5 {
		if m.Props != nil {
			p.Properties = *m.Props
		}
		if left, ok := m.RemainingExpiry(now); ok {
			p.Properties.MessageExpiry = left // [MQTT-3.3.2-6]
			p.Properties.Present.Add(packet.PropMessageExpiry)
		}
		p.Properties.SubscriptionIDs = d.SubIDs
	}
	if c.maxOut > 0 && packet.Size(&p, c.version) > c.maxOut {
		// Too large for the client: discard it as if delivered
		// [MQTT-3.1.2-25].
		c.srv.stats.tooLarge.Add(1)
		if d.PacketID != 0 {
			c.sess.Discard(d.PacketID)
		}
		return buf
	}
	if c.aliasMaxOut > 0 {
		if a, ok := c.aliasOut[m.Topic]; ok {
			p.Topic = ""
			p.Properties.TopicAlias = a
			p.Properties.Present.Add(packet.PropTopicAlias)
		} else if len(c.aliasOut) < int(c.aliasMaxOut) {
			if c.aliasOut == nil {
				c.aliasOut = make(map[string]uint16)
			}
			a := uint16(len(c.aliasOut) + 1)
			c.aliasOut[m.Topic] = a
			p.Properties.TopicAlias = a
			p.Properties.Present.Add(packet.PropTopicAlias)
		}
	}
	c.srv.stats.packetsSent.Add(1)
	c.srv.stats.publishSent.Add(1)
	c.srv.stats.byQoS.out(p.QoS, len(p.Payload))
	return packet.Append(buf, &p, c.version)
}

// newStoredQoS2 reports whether ds holds a stored QoS 2 message sent for
// the first time.
func newStoredQoS2(ds []session.Delivery) bool {
	for i := range ds {
		if d := &ds[i]; d.Ref.Seq != 0 && d.QoS == 2 && !d.Dup && d.State != session.AwaitPubcomp {
			return true
		}
	}
	return false
}
