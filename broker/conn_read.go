package broker

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"gatemq/broker/packet"
)

// readHeader reads a fixed header and checks the packet's size against
// the server's maximum before anything is allocated for the body.
func (c *conn) readHeader() (packet.Header, error) {
	c.rd.nextPacket()
	h, err := packet.ReadHeader(&c.rd)
	if err != nil {
		c.countConnectTimeout(err)
		return h, err
	}
	if total := h.Size(); total > c.lim.MaxPacketSize {
		return h, fmt.Errorf("%s of %d bytes over the limit of %d: %w", h.Type, total, c.lim.MaxPacketSize, packet.PacketTooLarge)
	}
	return h, nil
}

// readBytes reads a packet's body and counts the packet. The body is
// allocated as its bytes arrive (reader.readBody).
func (c *conn) readBytes(h packet.Header) ([]byte, error) {
	var body []byte
	if h.Remaining > 0 {
		var err error
		if body, err = c.rd.readBody(h.Remaining); err != nil {
			c.countConnectTimeout(err)
			return nil, err
		}
	}
	st := &c.srv.stats
	st.packetsRecv.Add(1)
	st.bytesRecv.Add(uint64(h.Size()))
	return body, nil
}

// readBody reads and decodes a packet other than a PUBLISH after
// CONNECT, or the CONNECT itself, and applies the limits of limits.go to
// a CONNECT.
func (c *conn) readBody(h packet.Header) (packet.Packet, error) {
	body, err := c.readBytes(h)
	if err != nil {
		return nil, err
	}
	pk, err := c.decodeOptions().Decode(h, body, c.version)
	if err != nil {
		c.countDecodeErr(err)
		return pk, err
	}
	if cp, ok := pk.(*packet.Connect); ok {
		return pk, c.checkConnectLimits(cp)
	}
	return pk, nil
}

// readAndHandle reads one packet after CONNECT and handles it. A PUBLISH
// is decoded into a variable of this frame rather than a new allocation:
// it is the packet that comes by the million.
func (c *conn) readAndHandle() error {
	if c.rd.r == c.rd.w {
		// Nothing buffered: the next read may block, so write the
		// replies to what was read so far.
		if err := c.flushReplies(); err != nil {
			return err
		}
	}
	h, err := c.readHeader()
	if err != nil {
		return err
	}
	if h.Type == packet.PUBLISH {
		body, err := c.readBytes(h)
		if err != nil {
			return err
		}
		var p packet.Publish
		if err := c.decodeOptions().DecodePublish(h, body, c.version, &p); err != nil {
			c.countDecodeErr(err)
			return err
		}
		if err := c.checkPublishLimits(&p); err != nil {
			return err
		}
		return c.handlePublish(&p)
	}
	pk, err := c.readBody(h)
	if err != nil {
		return err
	}
	return c.handle(pk)
}

// handle dispatches one packet received after CONNECT.
func (c *conn) handle(pk packet.Packet) error {
	switch p := pk.(type) {
	case *packet.Publish:
		return c.handlePublish(p)
	case *packet.Puback:
		c.sess.Puback(p.PacketID)
	case *packet.Pubrec:
		c.handlePubrec(p)
	case *packet.Pubrel:
		ok := c.sess.ReleaseQoS2(p.PacketID)
		ack := &packet.Pubcomp{PacketID: p.PacketID}
		if !ok {
			ack.Reason = packet.PacketIdentifierNotFound
		}
		if ok && c.srv.opts.Store != nil && c.sess.IsDurable() {
			// PUBCOMP only once the release is committed: until then the
			// publisher may not reuse the packet ID, and after a crash
			// the stored "received" mark would make its next message
			// with that ID look like a resend and be dropped.
			id := p.PacketID
			c.srv.opts.Store.Forget(onceKey(c.clientID, id), func(err error) {
				if err != nil {
					c.srv.log.Error("persist PUBREL: PUBCOMP withheld", logClientID, c.clientID, logErr, err)
					c.sess.RestoreInbound(id)
					return
				}
				c.send(ack)
			})
			return nil
		}
		c.reply(ack)
	case *packet.Pubcomp:
		c.sess.Pubcomp(p.PacketID)
	case *packet.Subscribe:
		return c.handleSubscribe(p)
	case *packet.Unsubscribe:
		c.handleUnsubscribe(p)
	case *packet.Pingreq:
		c.reply(&packet.Pingresp{})
	case *packet.Disconnect:
		return c.handleDisconnect(p)
	case *packet.Connect:
		return fmt.Errorf("second CONNECT: %w", packet.ProtocolError) // [MQTT-3.1.0-2]
	case *packet.Auth:
		// No authentication method was accepted at CONNECT, so there is
		// no exchange to continue (v5 4.12).
		return fmt.Errorf("AUTH without an authentication method: %w", packet.ProtocolError)
	default:
		return fmt.Errorf("%s from a client: %w", pk.Type(), packet.ProtocolError)
	}
	return nil
}

func (c *conn) handlePubrec(p *packet.Pubrec) {
	failed := p.Reason.Failed()
	if c.sess.Pubrec(p.PacketID, failed) {
		if failed {
			return
		}
		rel := &packet.Pubrel{PacketID: p.PacketID}
		if c.srv.opts.Store != nil && c.sess.IsDurable() {
			// The PUBREC is recorded before PUBREL goes, so a restart
			// resends PUBREL, never the message (exactly once).
			c.srv.persistInflight(c.sess, func(err error) {
				if err != nil {
					c.srv.log.Error("persist PUBREC: PUBREL withheld", logClientID, c.clientID, logErr, err)
					return
				}
				c.send(rel)
			})
			return
		}
		c.reply(rel)
		return
	}
	c.reply(&packet.Pubrel{PacketID: p.PacketID, Reason: packet.PacketIdentifierNotFound})
}

func (c *conn) handleDisconnect(p *packet.Disconnect) error {
	if p.Properties.Present.Has(packet.PropSessionExpiry) {
		// A session that ends with its connection cannot be made to
		// outlive it at DISCONNECT [MQTT-3.14.2-2].
		if c.connectExpiry == 0 && p.Properties.SessionExpiry != 0 {
			return fmt.Errorf("DISCONNECT session expiry after 0 at CONNECT: %w", packet.ProtocolError)
		}
		c.sess.SetExpiry(p.Properties.SessionExpiry)
	}
	if p.Reason == packet.DisconnectWithWill {
		c.setWhy(closeWithWill)
	} else {
		c.setWhy(closeNormal) // the will is discarded [MQTT-3.14.4-3]
	}
	return errClientDisconnect
}

// newClientID returns an identifier for a client that sent an empty one
// [MQTT-3.1.3-6].
func newClientID() string {
	var b [12]byte
	rand.Read(b[:])
	return "auto-" + hex.EncodeToString(b[:])
}

// keepAliveWindow is how long the server waits for a packet: one and a
// half times the keepalive [MQTT-3.1.2-24].
func keepAliveWindow(ka uint16) time.Duration {
	return time.Duration(ka) * 1500 * time.Millisecond
}
