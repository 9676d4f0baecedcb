package crash

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatemq/broker/packet"
)

// ioTimeout bounds every dial, CONNACK, SUBACK and socket write.
const ioTimeout = 5 * time.Second

// deliveryOrder numbers the deliveries to all subscribers in the order
// they arrive, to tell which of a message's deliveries came first.
var deliveryOrder atomic.Uint64

// A client is one MQTT client whose session state outlives its
// connections: the broker is killed under it and it connects again.
type client struct {
	id      string
	version packet.Version
	expiry  uint32 // v5 Session Expiry Interval; 3.1.1 uses clean session 0
	recvMax uint16 // v5 Receive Maximum
	clean   bool   // a new session on every connection (clean start, no expiry)

	// Publisher settings (topic != "").
	topic  string
	qos    byte
	window int           // PUBLISHes in flight at most
	every  time.Duration // pace of new messages

	// Subscriber settings (filter != "").
	filter string
	subQoS byte
	resub  bool // subscribe again on every connection, as most client libraries do

	// wmu serialises writes to the connection (the reader acknowledges
	// while the sender publishes); it is never taken with mu held.
	wmu sync.Mutex

	// mu guards every field below.
	mu         sync.Mutex
	nc         net.Conn      // the live connection, nil between connections
	down       chan struct{} // closed when the live connection's reader returns
	space      chan struct{} // a slot in the publishing window opened (capacity 1)
	connected  bool          // a CONNACK was ever received
	subscribed bool
	lastAck    time.Time // CONNACK of the first connection

	// Publisher state.
	sent     int        // highest sequence number sent
	inflight []*outMsg  // in send order
	acked    []bool     // acked[seq]: PUBACK or PUBREC with success
	resent   []bool     // resent[seq]: sent again on a later connection
	dropped  []int      // sequence numbers given up on a lost session
	nacked   []string   // failed acknowledgements
	ids      [8192]bool // packet identifiers in use (lowest free first)

	// Subscriber state.
	awaitRel   map[uint16]bool  // QoS 2 received, PUBREL not yet
	got        map[string][]int // publisher -> sequence numbers in arrival order
	gotQoS     map[string][]byte
	gotOrder   map[string][]uint64 // deliveryOrder when each delivery came, across subscribers
	seen       map[string][]bool   // publisher -> seen[seq]
	redeliv    int                 // QoS 2 PUBLISHes recognised by packet identifier
	odd        []string            // unparseable payloads, unexpected packets
	sessionGap []string            // session present 0 on a resumed session
}

// outMsg is a publisher's message in flight.
type outMsg struct {
	seq   int
	id    uint16
	topic string
	state packet.Type // PUBACK or PUBREC awaited, or PUBCOMP after PUBREL
}

func newPublisher(id string, qos byte, topic string, window int, every time.Duration) *client {
	return &client{id: id, version: packet.V5, expiry: 3600, topic: topic, qos: qos, window: window,
		every: every, acked: []bool{false}, resent: []bool{false}}
}

func newSubscriber(id string, v packet.Version, filter string, qos byte, recvMax uint16) *client {
	return &client{id: id, version: v, expiry: 3600, filter: filter, subQoS: qos, recvMax: recvMax,
		awaitRel: map[uint16]bool{}, got: map[string][]int{}, gotQoS: map[string][]byte{}, gotOrder: map[string][]uint64{},
		seen: map[string][]bool{}}
}

// newCleanSubscriber is newSubscriber with a clean session: a new one,
// subscribed again, on every connection.
func newCleanSubscriber(id string, v packet.Version, filter string, qos byte, recvMax uint16) *client {
	c := newSubscriber(id, v, filter, qos, recvMax)
	c.clean = true
	return c
}

// connect dials addr and resumes the client's session (clean start 0),
// subscribes on the first connection, and for a publisher resends what is
// in flight. It starts the reader goroutine; a publisher's sending starts
// with run.
func (c *client) connect(addr string) error {
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return fmt.Errorf("%s: dial: %w", c.id, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	br := bufio.NewReader(nc)
	cp := &packet.Connect{Version: c.version, KeepAlive: 300, ClientID: c.id, CleanStart: c.clean}
	if c.version == packet.V5 {
		if !c.clean {
			cp.Properties.Present.Add(packet.PropSessionExpiry)
			cp.Properties.SessionExpiry = c.expiry
		}
		if c.recvMax > 0 {
			cp.Properties.Present.Add(packet.PropReceiveMaximum)
			cp.Properties.ReceiveMaximum = c.recvMax
		}
	}
	nc.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := nc.Write(packet.Append(nil, cp, c.version)); err != nil {
		nc.Close()
		return fmt.Errorf("%s: write CONNECT: %w", c.id, err)
	}
	pk, err := packet.Read(br, c.version, 1<<20)
	if err != nil {
		nc.Close()
		return fmt.Errorf("%s: read CONNACK: %w", c.id, err)
	}
	ca, ok := pk.(*packet.Connack)
	if !ok || ca.Reason.Failed() {
		nc.Close()
		return fmt.Errorf("%s: CONNECT answered by %v", c.id, describe(pk))
	}
	nc.SetDeadline(time.Time{})

	c.mu.Lock()
	resumed := c.connected
	if !c.connected {
		c.connected, c.lastAck = true, time.Now()
	}
	if resumed && !ca.SessionPresent {
		if !c.clean {
			c.sessionGap = append(c.sessionGap, fmt.Sprintf("session present 0 on reconnection (first CONNACK %s ago)",
				time.Since(c.lastAck).Round(time.Millisecond)))
		}
		c.loseSessionLocked()
	}
	c.nc = nc
	c.down = make(chan struct{})
	c.space = make(chan struct{}, 1)
	// Resend in order what is in flight: PUBLISH with DUP, or PUBREL
	// past PUBREC [MQTT-4.4.0-1].
	var out []byte
	for _, m := range c.inflight {
		if m.state == packet.PUBCOMP {
			out = packet.Append(out, &packet.Pubrel{PacketID: m.id}, c.version)
			continue
		}
		c.resent[m.seq] = true
		out = packet.Append(out, c.publishOf(m, true), c.version)
	}
	down := c.down
	needSub := c.filter != "" && (!c.subscribed || c.resub)
	c.subscribed = c.subscribed && !needSub
	c.mu.Unlock()

	go c.read(nc, br, down)
	if len(out) > 0 {
		if err := c.write(nc, out); err != nil {
			return fmt.Errorf("%s: resend in-flight messages: %w", c.id, err)
		}
	}
	if needSub {
		return c.subscribe(nc, down)
	}
	return nil
}

// loseSessionLocked forgets the session state after a CONNACK with
// session present 0 [MQTT-4.1.0-2]: a publisher's messages in flight are
// given up (none was acknowledged: they may arrive or not), a
// subscriber's QoS 2 identifiers are forgotten and it subscribes again.
func (c *client) loseSessionLocked() {
	for _, m := range c.inflight {
		if m.state != packet.PUBCOMP {
			c.dropped = append(c.dropped, m.seq)
		}
		c.ids[m.id] = false
	}
	c.inflight = nil
	clear(c.awaitRel)
	c.subscribed = false
}

func (c *client) publishOf(m *outMsg, dup bool) *packet.Publish {
	return &packet.Publish{Dup: dup, QoS: c.qos, Topic: m.topic, PacketID: m.id,
		Payload: []byte(c.id + ":" + strconv.Itoa(m.seq))}
}

// subscribe sends SUBSCRIBE and waits for its SUBACK.
func (c *client) subscribe(nc net.Conn, down chan struct{}) error {
	pk := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: c.filter, QoS: c.subQoS}}}
	if err := c.write(nc, packet.Append(nil, pk, c.version)); err != nil {
		return fmt.Errorf("%s: subscribe: %w", c.id, err)
	}
	deadline := time.Now().Add(ioTimeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		ok := c.subscribed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-down:
			return fmt.Errorf("%s: connection lost before SUBACK", c.id)
		case <-time.After(2 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: no SUBACK within %s", c.id, ioTimeout)
}

// write writes b to nc, closing nc on failure.
func (c *client) write(nc net.Conn, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := nc.Write(b)
	if err != nil {
		nc.Close()
	}
	return err
}

// read handles the packets of one connection until it ends.
func (c *client) read(nc net.Conn, br *bufio.Reader, down chan struct{}) {
	defer func() {
		nc.Close()
		c.mu.Lock()
		if c.nc == nc {
			c.nc = nil
		}
		c.mu.Unlock()
		close(down)
	}()
	for {
		pk, err := packet.Read(br, c.version, 1<<20)
		if err != nil {
			return
		}
		out := c.handle(pk)
		if len(out) > 0 && c.write(nc, out) != nil {
			return
		}
	}
}

// handle updates the session state for pk and returns what to answer.
func (c *client) handle(pk packet.Packet) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch p := pk.(type) {
	case *packet.Publish:
		return c.receiveLocked(p)
	case *packet.Pubrel:
		delete(c.awaitRel, p.PacketID)
		return packet.Append(nil, &packet.Pubcomp{PacketID: p.PacketID}, c.version)
	case *packet.Puback:
		c.ackLocked(p.PacketID, packet.PUBACK, p.Reason)
	case *packet.Pubrec:
		if m := c.findLocked(p.PacketID); m != nil && m.state == packet.PUBCOMP {
			// A repeated PUBREC: PUBREL again.
			return packet.Append(nil, &packet.Pubrel{PacketID: p.PacketID}, c.version)
		}
		if c.ackLocked(p.PacketID, packet.PUBREC, p.Reason) {
			return packet.Append(nil, &packet.Pubrel{PacketID: p.PacketID}, c.version)
		}
	case *packet.Pubcomp:
		if m := c.findLocked(p.PacketID); m != nil && m.state == packet.PUBCOMP {
			c.removeLocked(m)
		}
	case *packet.Suback:
		if len(p.Reasons) != 1 || p.Reasons[0].Failed() {
			c.odd = append(c.odd, fmt.Sprintf("SUBACK %v", p.Reasons))
		} else {
			c.subscribed = true
		}
	case *packet.Disconnect, *packet.Pingresp:
	default:
		c.odd = append(c.odd, "unexpected "+describe(pk))
	}
	return nil
}

func (c *client) findLocked(id uint16) *outMsg {
	for _, m := range c.inflight {
		if m.id == id {
			return m
		}
	}
	return nil
}

// ackLocked handles a PUBACK or PUBREC; it reports whether a QoS 2
// message moved on to PUBREL.
func (c *client) ackLocked(id uint16, t packet.Type, r packet.Reason) bool {
	m := c.findLocked(id)
	if m == nil || m.state != t {
		c.odd = append(c.odd, fmt.Sprintf("%s for packet id %d not awaited", t, id))
		return false
	}
	if r.Failed() {
		c.nacked = append(c.nacked, fmt.Sprintf("%s:%d %s reason 0x%02x", c.id, m.seq, t, byte(r)))
		c.removeLocked(m)
		return false
	}
	c.acked[m.seq] = true
	if t == packet.PUBACK {
		c.removeLocked(m)
		return false
	}
	m.state = packet.PUBCOMP
	return true
}

func (c *client) removeLocked(m *outMsg) {
	for i, o := range c.inflight {
		if o == m {
			c.inflight = append(c.inflight[:i], c.inflight[i+1:]...)
			break
		}
	}
	c.ids[m.id] = false
	select {
	case c.space <- struct{}{}:
	default:
	}
}

// receiveLocked records a delivery and returns its acknowledgement.
func (c *client) receiveLocked(p *packet.Publish) []byte {
	var ack []byte
	switch p.QoS {
	case 1:
		ack = packet.Append(nil, &packet.Puback{PacketID: p.PacketID}, c.version)
	case 2:
		ack = packet.Append(nil, &packet.Pubrec{PacketID: p.PacketID}, c.version)
		if c.awaitRel[p.PacketID] {
			c.redeliv++
			return ack // seen: not delivered again [MQTT-4.3.3-9]
		}
		c.awaitRel[p.PacketID] = true
	}
	pub, seqStr, ok := strings.Cut(string(p.Payload), ":")
	seq, err := strconv.Atoi(seqStr)
	if !ok || err != nil || seq <= 0 {
		c.odd = append(c.odd, fmt.Sprintf("payload %q on %q", p.Payload, p.Topic))
		return ack
	}
	c.got[pub] = append(c.got[pub], seq)
	c.gotQoS[pub] = append(c.gotQoS[pub], p.QoS)
	c.gotOrder[pub] = append(c.gotOrder[pub], deliveryOrder.Add(1))
	seen := c.seen[pub]
	for len(seen) <= seq {
		seen = append(seen, false)
	}
	seen[seq] = true
	c.seen[pub] = seen
	return ack
}

// run publishes new messages, paced by every and bounded by the window,
// until the connection ends or stop is closed.
func (c *client) run(stop <-chan struct{}) {
	c.mu.Lock()
	nc, down, space := c.nc, c.down, c.space
	c.mu.Unlock()
	if nc == nil {
		return
	}
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-down:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		if len(c.inflight) >= c.window {
			c.mu.Unlock()
			select {
			case <-stop:
				return
			case <-down:
				return
			case <-space:
			}
			continue
		}
		m := &outMsg{seq: c.sent + 1, id: c.freeIDLocked(), topic: c.topic, state: packet.PUBACK}
		if c.qos == 2 {
			m.state = packet.PUBREC
		}
		c.sent++
		c.acked = append(c.acked, false)
		c.resent = append(c.resent, false)
		c.inflight = append(c.inflight, m)
		b := packet.Append(nil, c.publishOf(m, false), c.version)
		c.mu.Unlock()
		if c.write(nc, b) != nil {
			return
		}
	}
}

func (c *client) freeIDLocked() uint16 {
	for id := 1; id < len(c.ids); id++ {
		if !c.ids[id] {
			c.ids[id] = true
			return uint16(id)
		}
	}
	panic("no free packet identifier") // window < len(ids)
}

// setTopic sets the topic of the messages published from now on; those
// in flight keep theirs.
func (c *client) setTopic(topic string) {
	c.mu.Lock()
	c.topic = topic
	c.mu.Unlock()
}

// inflightLen returns how many messages a publisher has in flight.
func (c *client) inflightLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight)
}

// waitDown waits until the live connection, if any, has ended.
func (c *client) waitDown(timeout time.Duration) error {
	c.mu.Lock()
	down := c.down
	c.mu.Unlock()
	if down == nil {
		return nil
	}
	select {
	case <-down:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s: connection still open %s after the broker died", c.id, timeout)
	}
}

// drop closes the connection without DISCONNECT, as a client that goes
// away, and waits for its reader to end.
func (c *client) drop() {
	c.mu.Lock()
	nc, down := c.nc, c.down
	c.mu.Unlock()
	if nc != nil {
		nc.Close()
		<-down
	}
}

// disconnect sends DISCONNECT and closes the connection.
func (c *client) disconnect() {
	c.mu.Lock()
	nc, down := c.nc, c.down
	c.mu.Unlock()
	if nc == nil {
		return
	}
	c.write(nc, packet.Append(nil, &packet.Disconnect{}, c.version))
	nc.Close()
	<-down
}

func describe(pk packet.Packet) string {
	switch p := pk.(type) {
	case nil:
		return "nothing"
	case *packet.Connack:
		return fmt.Sprintf("CONNACK reason 0x%02x", byte(p.Reason))
	case *packet.Disconnect:
		return fmt.Sprintf("DISCONNECT reason 0x%02x", byte(p.Reason))
	}
	return pk.Type().String()
}
