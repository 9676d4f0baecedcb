package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"gatemq/broker/packet"
)

// rawPub is one publishing connection driven without paho, for pub at
// QoS 0 and 1: the tool's CPU is then a small part of the machine's,
// where paho's was about twice the broker's (a goroutine blocked per
// message in flight, a context, a session entry and several allocations
// per publish). It speaks MQTT v5 with gatemq's own codec
// (broker/packet): one goroutine writes PUBLISHes while the window of
// -inflight (and the broker's Receive Maximum) allows, coalescing them
// into one write; another reads the PUBACKs, records their latency and
// opens the window again.
type rawPub struct {
	nc net.Conn
	br *bufio.Reader

	wmu sync.Mutex // guards bw: the publishing goroutine and the pinger write
	bw  *bufio.Writer

	window    int                // QoS 1 publishes in flight at most
	slots     chan struct{}      // one per publish in flight
	sentAt    []int64            // by packet identifier: unix ns of the send
	keepAlive time.Duration      // PINGREQ interval, 0 for none
	done      chan struct{}      // closed when the reader returns
	readErr   error              // why it returned, set before done closes; nil after our DISCONNECT
	closing   atomic.Bool        // our DISCONNECT is on its way
	acks      histogram          // the reader's; read after it ended
	onAck     func(failed error) // each PUBACK: nil, or its failure
}

// dialRaw connects a rawPub to opts.Addr and completes the v5 handshake.
// inflight bounds the QoS 1 publishes in flight; the broker's Receive
// Maximum may bound them further. onAck hears each PUBACK (nil, or its
// failure) and, at QoS 0, each message written.
func dialRaw(ctx context.Context, opts clientOptions, inflight int, onAck func(failed error)) (*rawPub, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", opts.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	p := &rawPub{nc: nc, br: bufio.NewReaderSize(nc, 32<<10), bw: bufio.NewWriterSize(nc, 64<<10), onAck: onAck}
	ka := opts.KeepAlive
	if ka == 0 {
		ka = 60
	}
	cp := &packet.Connect{ProtocolName: "MQTT", Version: packet.V5, CleanStart: !opts.Resume, KeepAlive: ka, ClientID: opts.ClientID}
	if opts.SessionExpiry > 0 {
		cp.Properties.Present.Add(packet.PropSessionExpiry)
		cp.Properties.SessionExpiry = opts.SessionExpiry
	}
	if opts.Username != "" {
		cp.UsernameFlag, cp.Username = true, opts.Username
	}
	if opts.Password != "" {
		cp.PasswordFlag, cp.Password = true, []byte(opts.Password)
	}
	if _, err := nc.Write(packet.Append(nil, cp, packet.V5)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect %q: %w", opts.ClientID, err)
	}
	pk, err := packet.Read(p.br, packet.V5, 0)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect %q: read CONNACK: %w", opts.ClientID, err)
	}
	ca, ok := pk.(*packet.Connack)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("connect %q: got %v, want CONNACK", opts.ClientID, pk.Type())
	}
	if ca.Reason.Failed() {
		nc.Close()
		return nil, fmt.Errorf("connect %q: reason code 0x%02x", opts.ClientID, byte(ca.Reason))
	}
	nc.SetDeadline(time.Time{})
	p.window = min(max(inflight, 1), 65535) // one packet identifier each
	if ca.Properties.Present.Has(packet.PropReceiveMaximum) {
		p.window = min(p.window, int(ca.Properties.ReceiveMaximum))
	}
	if ca.Properties.Present.Has(packet.PropServerKeepAlive) {
		ka = ca.Properties.ServerKeepAlive
	}
	p.keepAlive = time.Duration(ka) * time.Second / 2
	p.slots = make(chan struct{}, p.window)
	p.sentAt = make([]int64, 65536)
	p.done = make(chan struct{})
	go p.read()
	return p, nil
}

// read reads the broker's packets until the connection ends: PUBACKs
// open the window, PINGRESPs are dropped, anything else ends the run.
func (p *rawPub) read() {
	defer close(p.done)
	body := make([]byte, 0, 64)
	for {
		h, err := packet.ReadHeader(p.br)
		if err == nil && h.Remaining > 1<<20 {
			err = fmt.Errorf("%v of %d bytes: %w", h.Type, h.Remaining, packet.PacketTooLarge)
		}
		if err == nil {
			body = body[:h.Remaining]
			_, err = io.ReadFull(p.br, body)
		}
		if err != nil {
			if !p.closing.Load() {
				p.readErr = err
			}
			return
		}
		switch {
		case h.Type == packet.PUBACK && len(body) >= 2:
			id := binary.BigEndian.Uint16(body)
			var failed error
			if len(body) > 2 && packet.Reason(body[2]).Failed() {
				failed = fmt.Errorf("PUBACK %d: reason code 0x%02x", id, body[2])
			}
			if len(p.slots) == 0 {
				// Only this goroutine takes slots: none is in flight.
				p.readErr = fmt.Errorf("PUBACK %d with no publish in flight", id)
				p.nc.Close()
				return
			}
			p.acks.record(time.Duration(time.Now().UnixNano() - p.sentAt[id]))
			p.onAck(failed)
			<-p.slots // after the record: run's finish reads acks once it has every slot back
		case h.Type == packet.PINGRESP:
		default:
			pk, err := packet.Decode(h, body, packet.V5)
			if d, ok := pk.(*packet.Disconnect); ok {
				err = fmt.Errorf("server sent DISCONNECT, reason code 0x%02x", byte(d.Reason))
			} else if err == nil {
				err = fmt.Errorf("unexpected %v", h.Type)
			}
			p.readErr = err
			p.nc.Close()
			return
		}
	}
}

// run publishes count messages (0: until ctx ends) of qos to topic, the
// k-th due at first + k*period, and returns once the last QoS 1 publish
// is acknowledged. onAck hears each message written (QoS 0) or
// acknowledged (QoS 1, with the failure of its PUBACK if any).
func (p *rawPub) run(ctx context.Context, qos byte, topic string, size int, retain bool, count int,
	first time.Time, period time.Duration) error {
	payload := make([]byte, size)
	for j := 8; j < len(payload); j++ {
		payload[j] = 'a' + byte(j%26)
	}
	pk := &packet.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: payload}
	pctx, stopPing := context.WithCancel(ctx)
	defer stopPing()
	go p.ping(pctx)
	var id uint16
	var buf []byte
	for k := 0; count == 0 || k < count; k++ {
		if ctx.Err() != nil {
			break
		}
		if period > 0 && !sleepUntil(ctx, first.Add(period*time.Duration(k))) {
			break
		}
		if qos > 0 {
			select {
			case p.slots <- struct{}{}:
			default:
				// The window is full: what is written goes out while
				// the acknowledgements come back.
				if err := p.flush(); err != nil {
					return err
				}
				select {
				case p.slots <- struct{}{}:
				case <-p.done:
					return p.ended(nil)
				case <-ctx.Done():
					return p.finish()
				}
			}
			if id++; id == 0 {
				id = 1
			}
			pk.PacketID = id
		}
		now := time.Now()
		if len(payload) >= 8 {
			binary.BigEndian.PutUint64(payload, uint64(now.UnixNano()))
		}
		if qos > 0 {
			p.sentAt[id] = now.UnixNano()
		}
		buf = packet.Append(buf[:0], pk, packet.V5)
		p.wmu.Lock()
		_, err := p.bw.Write(buf)
		if err == nil && period > 0 {
			err = p.bw.Flush() // paced: each message goes when due
		}
		p.wmu.Unlock()
		if err != nil {
			return p.ended(err)
		}
		if qos == 0 {
			p.onAck(nil)
		}
	}
	return p.finish()
}

// finish flushes what is written and waits for every QoS 1 publish in
// flight to be acknowledged, each within packetTimeout of the one before.
func (p *rawPub) finish() error {
	if err := p.flush(); err != nil {
		return err
	}
	for i := range p.window {
		select {
		case p.slots <- struct{}{}:
		case <-p.done:
			return p.ended(nil)
		case <-time.After(packetTimeout):
			return p.ended(fmt.Errorf("%d publishes not acknowledged within %v", p.window-i, packetTimeout))
		}
	}
	for range p.window {
		<-p.slots
	}
	return nil
}

func (p *rawPub) flush() error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.bw.Flush(); err != nil {
		return p.ended(err)
	}
	return nil
}

// ended is the error that ended the run: err (nil when the reader
// ended), or the reader's own when it ended first, which says why a
// write failed. It closes the connection and waits for the reader, so
// that acks and onAck are left alone once run returns.
func (p *rawPub) ended(err error) error {
	select {
	case <-p.done:
		if p.readErr != nil {
			err = p.readErr
		}
	default:
		p.nc.Close()
		<-p.done
	}
	if err == nil {
		err = errors.New("connection closed")
	}
	return err
}

// ping sends a PINGREQ every half keepalive, so that a paced run slower
// than the keepalive is not cut off; it returns when ctx ends.
func (p *rawPub) ping(ctx context.Context) {
	if p.keepAlive <= 0 {
		return
	}
	t := time.NewTicker(p.keepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.wmu.Lock()
			p.bw.Write(packet.Append(nil, &packet.Pingreq{}, packet.V5))
			p.bw.Flush()
			p.wmu.Unlock()
		}
	}
}

// disconnect sends DISCONNECT and closes the connection once the broker
// has closed its side (or after a second).
func (p *rawPub) disconnect() {
	p.closing.Store(true)
	p.wmu.Lock()
	p.bw.Write(packet.Append(nil, &packet.Disconnect{}, packet.V5))
	p.bw.Flush()
	p.wmu.Unlock()
	select {
	case <-p.done:
	case <-time.After(time.Second):
	}
	p.nc.Close()
}
