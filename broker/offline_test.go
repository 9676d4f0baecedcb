package broker

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/boltstore"
	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// startOffline starts a broker with a store in a fresh directory and the
// given offline rules; restart keeps the directory.
func startOffline(t *testing.T, rules ...OfflineRule) *durableBroker {
	t.Helper()
	o := testOptions()
	o.Offline = rules
	return startDurable(t, t.TempDir(), o, nil)
}

// consumer is a raw MQTT client reading on its own goroutine: it
// acknowledges every message (QoS 2: PUBREC, then PUBCOMP on PUBREL,
// recognising a resend by its packet identifier) and records the
// payloads; with hold it records them and acknowledges nothing.
type consumer struct {
	consumerOpts
	nc net.Conn
	br *bufio.Reader

	// mu guards the fields below and the writes to nc, so that every
	// acknowledgement of a recorded message goes before DISCONNECT.
	mu       sync.Mutex
	got      []string
	dups     int // PUBLISHes with DUP set
	awaitRel map[uint16]bool
	stopping bool
	done     chan struct{} // closed when the reader returns
}

type consumerOpts struct {
	v       packet.Version
	id      string
	expiry  uint32 // v5 Session Expiry Interval; 3.x: clean session 0 when > 0
	filter  string // subscribed on the first connection when set
	qos     byte
	recvMax uint16 // v5 Receive Maximum; 0: none
	hold    bool
}

// startConsumer connects, subscribes when o.filter is set, and starts
// reading.
func startConsumer(t *testing.T, addr string, o consumerOpts) (*consumer, *packet.Connack) {
	t.Helper()
	c := &consumer{consumerOpts: o, awaitRel: map[uint16]bool{}, done: make(chan struct{})}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	cp := &packet.Connect{ClientID: o.id, KeepAlive: 60, CleanStart: o.expiry == 0}
	if o.v == packet.V5 {
		cp.Properties = withExpiry(o.expiry)
		if o.recvMax > 0 {
			cp.Properties.ReceiveMaximum = o.recvMax
			cp.Properties.Present.Add(packet.PropReceiveMaximum)
		}
	}
	rc := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), v: o.v}
	ack := rc.connect(cp)
	if ack.Reason != packet.Success {
		t.Fatalf("connect %s: %v", o.id, ack.Reason)
	}
	c.nc, c.br = nc, rc.br
	if o.filter != "" {
		c.mu.Lock()
		c.writeLocked(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: o.filter, QoS: o.qos}}})
		c.mu.Unlock()
	}
	go c.read()
	return c, ack
}

func consume(t *testing.T, addr string, v packet.Version, id string, expiry uint32, filter string, qos byte) *consumer {
	t.Helper()
	c, _ := startConsumer(t, addr, consumerOpts{v: v, id: id, expiry: expiry, filter: filter, qos: qos})
	return c
}

func (c *consumer) writeLocked(pk packet.Packet) {
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.nc.Write(packet.Append(nil, pk, c.v))
}

func (c *consumer) read() {
	defer close(c.done)
	for {
		c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		pk, err := packet.Read(c.br, c.v, 0)
		if err != nil {
			return
		}
		c.mu.Lock()
		if !c.stopping {
			c.handleLocked(pk)
		}
		c.mu.Unlock()
	}
}

func (c *consumer) handleLocked(pk packet.Packet) {
	switch p := pk.(type) {
	case *packet.Publish:
		if p.Dup {
			c.dups++
		}
		if c.hold || p.QoS < 2 || !c.awaitRel[p.PacketID] {
			c.got = append(c.got, string(p.Payload))
		}
		switch {
		case c.hold:
		case p.QoS == 1:
			c.writeLocked(&packet.Puback{PacketID: p.PacketID})
		case p.QoS == 2:
			c.awaitRel[p.PacketID] = true
			c.writeLocked(&packet.Pubrec{PacketID: p.PacketID})
		}
	case *packet.Pubrel:
		delete(c.awaitRel, p.PacketID)
		c.writeLocked(&packet.Pubcomp{PacketID: p.PacketID})
	}
}

// received returns a copy of the payloads received so far.
func (c *consumer) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// stop sends DISCONNECT, after the acknowledgements of everything
// recorded, and waits for the reader to end.
func (c *consumer) stop() {
	c.mu.Lock()
	c.stopping = true
	c.writeLocked(&packet.Disconnect{})
	c.mu.Unlock()
	c.nc.Close()
	<-c.done
}

// drop closes the connection without DISCONNECT.
func (c *consumer) drop() {
	c.nc.Close()
	<-c.done
}

// publishN publishes payloads prefix0..prefix(n-1) on topic(i) with
// qos(i) and checks each acknowledgement is a success.
func publishN(t *testing.T, pub *rawClient, n int, prefix string, topic func(int) string, qos func(int) byte) {
	t.Helper()
	for i := range n {
		p := &packet.Publish{Topic: topic(i), QoS: qos(i), PacketID: uint16(i%60000 + 1), Payload: []byte(prefix + strconv.Itoa(i))}
		if r := pub.publishAck(p); r != packet.Success {
			t.Fatalf("publish %d: %v, want success (the rule keeps it)", i, r)
		}
	}
}

// publishBatches publishes n messages as publishN does, 50 at a time
// without waiting for each acknowledgement.
func publishBatches(t *testing.T, pub *rawClient, n int, prefix string, topic func(int) string, qos func(int) byte) {
	t.Helper()
	for start := 0; start < n; start += 50 {
		open := 0
		for i := start; i < min(start+50, n); i++ {
			pub.send(&packet.Publish{Topic: topic(i), QoS: qos(i), PacketID: uint16(i%50 + 1), Payload: []byte(prefix + strconv.Itoa(i))})
			open++
		}
		for open > 0 {
			switch a := pub.recv().(type) {
			case *packet.Puback:
				if a.Reason != packet.Success {
					t.Fatalf("PUBACK %d: %v", a.PacketID, a.Reason)
				}
				open--
			case *packet.Pubrec:
				if a.Reason != packet.Success {
					t.Fatalf("PUBREC %d: %v", a.PacketID, a.Reason)
				}
				pub.send(&packet.Pubrel{PacketID: a.PacketID})
			case *packet.Pubcomp:
				open--
			default:
				t.Fatalf("publisher got %T", a)
			}
		}
	}
}

func TestOffline_QueueTenConsumers(t *testing.T) {
	t.Parallel()
	b := startOffline(t, OfflineRule{Filter: "jobs/#", Mode: OfflineQueue, MaxMessages: 100000})
	const n = 2000
	type receiver interface{ received() []string }
	var all []receiver
	// Raw consumers: 3.1.1 and 3.1 clean and persistent, v5 clean and
	// persistent with small receive maximums, QoS 1 and 2.
	raw := []struct {
		v       packet.Version
		expiry  uint32
		qos     byte
		recvMax uint16
	}{
		{packet.V311, 0, 1, 0}, {packet.V311, 600, 2, 0}, {packet.V31, 0, 2, 0},
		{packet.V5, 0, 1, 3}, {packet.V5, 600, 2, 5}, {packet.V5, 600, 1, 1}, {packet.V5, 0, 2, 8},
	}
	for i, r := range raw {
		c, _ := startConsumer(t, b.addr, consumerOpts{v: r.v, id: fmt.Sprintf("worker-%d", i), expiry: r.expiry, filter: "jobs/#",
			qos: r.qos, recvMax: r.recvMax})
		all = append(all, c)
	}
	// paho.golang consumers, one on a shared subscription: every
	// subscriber with QoS > 0 is a consumer of the queue.
	for i, f := range []string{"jobs/#", "jobs/+/x", "$share/g/jobs/#"} {
		pc := &pahoConsumer{}
		cl := connectV5(t, b.addr, &paho.Connect{ClientID: fmt.Sprintf("paho-%d", i), CleanStart: true})
		cl.subscribeWith(&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: f, QoS: 1}}})
		pc.start(cl)
		all = append(all, pc)
	}
	pub := dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("jobs-pub", true)
	publishBatches(t, pub, n, "job-", func(i int) string { return fmt.Sprintf("jobs/%d/x", i%7) }, func(i int) byte { return byte(1 + i%2) })

	var got map[string]string
	testkit.WaitFor(t, 20*time.Second, func() error {
		got = map[string]string{}
		for i, c := range all {
			for _, p := range c.received() {
				if other, ok := got[p]; ok {
					t.Fatalf("%s delivered to consumer %s and %d", p, other, i)
				}
				got[p] = strconv.Itoa(i)
			}
		}
		if len(got) < n {
			return fmt.Errorf("%d of %d messages delivered", len(got), n)
		}
		return nil
	})
	for i := range n {
		if _, ok := got["job-"+strconv.Itoa(i)]; !ok {
			t.Fatalf("job-%d lost", i)
		}
	}
	busy := 0
	for _, c := range all {
		if len(c.received()) > 0 {
			busy++
		}
	}
	if busy < 5 {
		t.Errorf("only %d of %d consumers got messages: the queue is not shared", busy, len(all))
	}
	testkit.WaitFor(t, 5*time.Second, func() error {
		if w, f := b.srv.offline.queues[0].stats(); w+f != 0 {
			return fmt.Errorf("queue holds %d waiting, %d in flight after every message was acknowledged", w, f)
		}
		return nil
	})
	// Consumed: nothing comes again after a restart.
	b.restart()
	late := consume(t, b.addr, packet.V5, "late", 0, "jobs/#", 1)
	expectNone(t, late, 300*time.Millisecond)
}

// stats returns how many messages wait in q and how many are handed out.
func (q *queue) stats() (waiting, inflight int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending), len(q.held)
}

// pahoConsumer collects what a paho client receives (paho acknowledges
// each message once its handler returns).
type pahoConsumer struct {
	mu  sync.Mutex
	got []string
}

func (p *pahoConsumer) start(c *v5Client) {
	go func() {
		for m := range c.msgs {
			p.mu.Lock()
			p.got = append(p.got, string(m.Payload))
			p.mu.Unlock()
		}
	}()
}

func (p *pahoConsumer) received() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// expectNone checks that c receives nothing for d.
func expectNone(t *testing.T, c *consumer, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := c.received(); len(got) > 0 {
			t.Fatalf("%s received %v", c.id, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A queue keeps what is published while nobody consumes it, across a
// restart, and the first consumer gets it all, in order.
func TestOffline_QueueBacklogToLateConsumer(t *testing.T) {
	t.Parallel()
	b := startOffline(t, OfflineRule{Filter: "tasks/+", Mode: OfflineQueue})
	// A QoS 0 subscriber is no consumer: it gets none of the queue.
	watcher := consume(t, b.addr, packet.V311, "qos0-watcher", 0, "tasks/+", 0)
	pub := dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("tasks-pub", true)
	const n = 50
	publishN(t, pub, n, "task-", func(int) string { return "tasks/a" }, func(i int) byte { return byte(1 + i%2) })
	// QoS 0 messages are not queued: routed as usual, to who is there.
	pub.send(&packet.Publish{Topic: "tasks/a", Payload: []byte("live")})
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := watcher.received(); !slices.Equal(got, []string{"live"}) {
			return fmt.Errorf("QoS 0 subscriber got %v, want only the QoS 0 message", got)
		}
		return nil
	})
	b.restart()
	c := consume(t, b.addr, packet.V31, "late-1", 0, "tasks/#", 2)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := c.received(); len(got) < n {
			return fmt.Errorf("%d of %d", len(got), n)
		}
		return nil
	})
	for i, p := range c.received() {
		if p != "task-"+strconv.Itoa(i) {
			t.Fatalf("message %d is %q: backlog out of order", i, p)
		}
	}
	c2 := consume(t, b.addr, packet.V5, "late-2", 0, "tasks/+", 1)
	expectNone(t, c2, 200*time.Millisecond)
}

// A message handed to a consumer that leaves without acknowledging it
// goes to another consumer (clean session) or back to the same one when
// it returns (persistent session, resent with DUP and its packet ID).
func TestOffline_QueueUnacknowledged(t *testing.T) {
	t.Parallel()
	b := startOffline(t, OfflineRule{Filter: "work", Mode: OfflineQueue})
	pub := dialRaw(t, b.addr, packet.V311)
	pub.mustConnect("work-pub", true)

	clean, _ := startConsumer(t, b.addr, consumerOpts{v: packet.V311, id: "clean-worker", filter: "work", qos: 1, hold: true})
	publishN(t, pub, 3, "a", func(int) string { return "work" }, func(int) byte { return 1 })
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := clean.received(); len(got) != 3 {
			return fmt.Errorf("clean worker got %v", got)
		}
		return nil
	})
	clean.drop() // gone without acknowledging: its session ends

	durable, _ := startConsumer(t, b.addr, consumerOpts{v: packet.V5, id: "durable-worker", expiry: 600, filter: "work", qos: 2, hold: true})
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := durable.received(); !slices.Equal(got, []string{"a0", "a1", "a2"}) {
			return fmt.Errorf("durable worker got %v, want the clean worker's a0..a2", got)
		}
		return nil
	})
	durable.drop() // in flight to a persistent session: kept for it
	waitOffline(t, b.srv, "durable-worker")

	other := consume(t, b.addr, packet.V5, "other-worker", 0, "work", 1)
	publishN(t, pub, 2, "b", func(int) string { return "work" }, func(int) byte { return 1 })
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := other.received(); !slices.Equal(got, []string{"b0", "b1"}) {
			return fmt.Errorf("other worker got %v, want only b0, b1", got)
		}
		return nil
	})
	// The durable worker comes back: a0..a2 again, DUP, same IDs.
	back, ack := startConsumer(t, b.addr, consumerOpts{v: packet.V5, id: "durable-worker", expiry: 600})
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := back.received(); !slices.Equal(got, []string{"a0", "a1", "a2"}) {
			return fmt.Errorf("returning worker got %v", got)
		}
		return nil
	})
	back.mu.Lock()
	dups := back.dups
	back.mu.Unlock()
	if dups != 3 {
		t.Fatalf("%d of the 3 resent messages had DUP set", dups)
	}
	testkit.WaitFor(t, 5*time.Second, func() error {
		if w, f := b.srv.offline.queues[0].stats(); w+f != 0 {
			return fmt.Errorf("queue holds %d waiting, %d in flight", w, f)
		}
		return nil
	})
	expectNone(t, consume(t, b.addr, packet.V5, "last", 0, "work", 1), 200*time.Millisecond)
}

// A full queue refuses: v5 PUBACK 0x97, a 3.x publisher is disconnected
// without an acknowledgement.
func TestOffline_QueueFull(t *testing.T) {
	t.Parallel()
	b := startOffline(t, OfflineRule{Filter: "q/#", Mode: OfflineQueue, MaxMessages: 3, MaxBytes: 100})
	v5 := dialRaw(t, b.addr, packet.V5)
	v5.mustConnect("full-pub5", true)
	publishN(t, v5, 3, "m", func(int) string { return "q/x" }, func(int) byte { return 1 })
	if r := v5.publishAck(&packet.Publish{Topic: "q/x", QoS: 2, PacketID: 9, Payload: []byte("over")}); r != packet.QuotaExceeded {
		t.Fatalf("4th message at QoS 2: %v, want quota exceeded", r)
	}
	expectQuotaRefused(t, b.addr, "q/y", []byte("over"))
	// Consuming makes room.
	c := consume(t, b.addr, packet.V5, "drain", 0, "q/#", 1)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if w, f := b.srv.offline.queues[0].stats(); len(c.received()) != 3 || w+f != 0 {
			return fmt.Errorf("consumer got %v; queue %d waiting, %d in flight", c.received(), w, f)
		}
		return nil
	})
	if r := v5.publishAck(&packet.Publish{Topic: "q/x", QoS: 1, PacketID: 10, Payload: []byte(string(make([]byte, 101)))}); r != packet.QuotaExceeded {
		t.Fatalf("message over max_bytes: %v, want quota exceeded", r)
	}
	if r := v5.publishAck(&packet.Publish{Topic: "q/x", QoS: 1, PacketID: 11, Payload: []byte("fits")}); r != packet.Success {
		t.Fatalf("after consuming: %v", r)
	}
}

// pubsubReader is a clean-session subscriber that reads a pubsub rule's
// messages on each connection.
func readPubsub(t *testing.T, addr string, v packet.Version, id, filter string, want []string) {
	t.Helper()
	c := consume(t, addr, v, id, 0, filter, 1)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := c.received(); len(got) < len(want) {
			return fmt.Errorf("%s: %d of %d", id, len(got), len(want))
		}
		return nil
	})
	expectMore(t, c, len(want), 100*time.Millisecond)
	if got := c.received(); !slices.Equal(got, want) {
		t.Fatalf("%s got %v\nwant %v", id, got, want)
	}
	c.stop()
}

// expectMore checks that c receives no more than n messages for d.
func expectMore(t *testing.T, c *consumer, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := c.received(); len(got) > n {
			t.Fatalf("%s received %d messages, want %d: %v", c.id, len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func seqs(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

// Two clean-session clients with different positions: each gets what
// was published after its own, after a reconnection and after a
// restart; a client subscribing for the first time starts from now.
func TestOffline_PubsubPositions(t *testing.T) {
	t.Parallel()
	b := startOffline(t, OfflineRule{Filter: "news/#", Mode: OfflinePubsub})
	pub := dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("news-pub", true)
	topic := func(i int) string { return "news/" + strconv.Itoa(i%3) }
	qos := func(i int) byte { return byte(1 + i%2) }
	publishN(t, pub, 5, "old-", topic, qos) // before anyone: nobody gets these

	a := consume(t, b.addr, packet.V311, "reader-a", 0, "news/#", 2)
	publishN(t, pub, 10, "m", topic, qos)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := a.received(); !slices.Equal(got, seqs("m", 0, 10)) {
			return fmt.Errorf("a got %v", got)
		}
		return nil
	})
	a.stop()

	publishN(t, pub, 10, "n", topic, qos)
	// b subscribes for the first time: from now, so none of n0..n9.
	bc := consume(t, b.addr, packet.V5, "reader-b", 0, "news/+", 1)
	expectNone(t, bc, 200*time.Millisecond)
	publishN(t, pub, 10, "p", topic, qos)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := bc.received(); !slices.Equal(got, seqs("p", 0, 10)) {
			return fmt.Errorf("b got %v", got)
		}
		return nil
	})
	bc.stop()
	// a comes back, a clean session: everything after its position.
	readPubsub(t, b.addr, packet.V311, "reader-a", "news/#", append(seqs("n", 0, 10), seqs("p", 0, 10)...))

	publishN(t, pub, 5, "q", topic, qos)
	b.restart()
	pub = dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("news-pub", true)
	publishN(t, pub, 5, "r", topic, qos)
	readPubsub(t, b.addr, packet.V5, "reader-a", "news/#", append(seqs("q", 0, 5), seqs("r", 0, 5)...))
	readPubsub(t, b.addr, packet.V31, "reader-b", "news/+", append(seqs("q", 0, 5), seqs("r", 0, 5)...))
	// Nothing twice.
	readPubsub(t, b.addr, packet.V311, "reader-a", "news/#", nil)
}

// A client reconnecting while messages keep coming gets each once and
// in order: no gap and no duplicate at the seam between what was stored
// while it was away and live traffic.
func TestOffline_PubsubSeam(t *testing.T) {
	t.Parallel()
	b := startOffline(t, OfflineRule{Filter: "feed", Mode: OfflinePubsub})
	// The first subscription starts the client's position.
	first := consume(t, b.addr, packet.V5, "seam", 0, "feed", 1)
	first.stop()

	const n = 1500
	pubDone := make(chan error, 1)
	go func() {
		nc, err := net.Dial("tcp", b.addr)
		if err != nil {
			pubDone <- err
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		nc.Write(packet.Append(nil, &packet.Connect{ClientID: "seam-pub", CleanStart: true, KeepAlive: 60}, packet.V311))
		if _, err := packet.Read(br, packet.V311, 0); err != nil {
			pubDone <- err
			return
		}
		for i := range n {
			nc.Write(packet.Append(nil, &packet.Publish{Topic: "feed", QoS: 1, PacketID: uint16(i%1000 + 1), Payload: []byte(strconv.Itoa(i))}, packet.V311))
			if _, err := packet.Read(br, packet.V311, 0); err != nil { // PUBACK
				pubDone <- err
				return
			}
		}
		pubDone <- nil
	}()
	var all []int
	last := func() int {
		if len(all) == 0 {
			return -1
		}
		return all[len(all)-1]
	}
	// Connect, read at least 25 messages (or up to the last), disconnect,
	// again, while the publisher runs.
	for round := 0; last() < n-1; round++ {
		c := consume(t, b.addr, []packet.Version{packet.V5, packet.V311}[round%2], "seam", 0, "feed", 1)
		testkit.WaitFor(t, 10*time.Second, func() error {
			got := c.received()
			if len(got) >= 25 || len(got) > 0 && got[len(got)-1] == strconv.Itoa(n-1) {
				return nil
			}
			return fmt.Errorf("round %d: %d messages after %d", round, len(got), last())
		})
		c.stop()
		for _, p := range c.received() {
			v, _ := strconv.Atoi(p)
			all = append(all, v)
		}
	}
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	for i, v := range all {
		if v != i {
			t.Fatalf("message %d is %d (gap or duplicate at a seam): %v", i, v, all[max(0, i-5):min(len(all), i+5)])
		}
	}
}

// A durable session subscribed to a pubsub rule's topics reads it from
// its position too, across a restart, a QoS 2 message exactly once; and
// its position outlives the session (clean start).
func TestOffline_PubsubDurableSession(t *testing.T) {
	t.Parallel()
	b := startOffline(t, OfflineRule{Filter: "ev/#", Mode: OfflinePubsub})
	sub, _ := connect5(t, b.addr, "ev-durable", false, withExpiry(600))
	sub.subscribe(1, packet.Subscription{Filter: "ev/#", QoS: 2})
	pub := dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("ev-pub", true)
	publishN(t, pub, 3, "e", func(int) string { return "ev/x" }, func(int) byte { return 2 })
	got := sub.recvPublishes(3)
	// The 4th is received, PUBREC not sent: in flight at the restart.
	pub.publishAck(&packet.Publish{Topic: "ev/x", QoS: 2, PacketID: 4, Payload: []byte("e3")})
	p4 := sub.recvPublish()
	b.restart()
	sub, ack := connect5(t, b.addr, "ev-durable", false, withExpiry(600))
	if !ack.SessionPresent {
		t.Fatal("session lost")
	}
	again := sub.recvPublishes(1)
	if !again[0].Dup || again[0].PacketID != p4.PacketID || string(again[0].Payload) != "e3" {
		t.Fatalf("resent %+v, want e3 with DUP and packet ID %d", again[0], p4.PacketID)
	}
	sub.expectNothing(150 * time.Millisecond)
	for i, p := range got {
		if string(p.Payload) != "e"+strconv.Itoa(i) {
			t.Fatalf("got %q", p.Payload)
		}
	}
	sub.disconnect()
	pub = dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("ev-pub", true)
	publishN(t, pub, 2, "f", func(int) string { return "ev/y" }, func(int) byte { return 1 })
	// A clean start ends the session, not the client's position.
	readPubsub(t, b.addr, packet.V5, "ev-durable", "ev/#", []string{"f0", "f1"})
}

func TestOffline_TopicMatches(t *testing.T) {
	tests := []struct {
		f, topic string
		want     bool
	}{
		{"a/b", "a/b", true}, {"a/b", "a/c", false}, {"a/+", "a/b", true}, {"a/+", "a", false},
		{"a/#", "a", true}, {"a/#", "a/b/c", true}, {"#", "a", true}, {"#", "$SYS/x", false},
		{"+/x", "$a/x", false}, {"$a/x", "$a/x", true}, {"a", "a/b", false}, {"a/b", "a", false},
		{"+/+", "a/", true}, {"a/+/c", "a//c", true}, {"+", "", true}, {"/#", "/a", true},
	}
	for _, tc := range tests {
		if got := topicMatches(tc.f, tc.topic); got != tc.want {
			t.Errorf("topicMatches(%q, %q) = %v, want %v", tc.f, tc.topic, got, tc.want)
		}
	}
}

// A queued message that expires (v5 Message Expiry Interval) leaves the
// queue, consumed or not.
func TestOffline_QueueMessageExpiry(t *testing.T) {
	t.Parallel()
	b := startOffline(t, OfflineRule{Filter: "exp/#", Mode: OfflineQueue})
	pub := dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("exp-pub", true)
	p := &packet.Publish{Topic: "exp/a", QoS: 1, PacketID: 1, Payload: []byte("short-lived")}
	p.Properties.MessageExpiry = 1
	p.Properties.Present.Add(packet.PropMessageExpiry)
	if r := pub.publishAck(p); r != packet.Success {
		t.Fatal(r)
	}
	publishN(t, pub, 1, "kept", func(int) string { return "exp/b" }, func(int) byte { return 1 })
	testkit.WaitFor(t, 5*time.Second, func() error {
		if w, f := b.srv.offline.queues[0].stats(); w+f != 1 {
			return fmt.Errorf("queue holds %d waiting, %d in flight; want the one that does not expire", w, f)
		}
		return nil
	})
	c := consume(t, b.addr, packet.V5, "exp-late", 0, "exp/#", 1)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := c.received(); !slices.Equal(got, []string{"kept0"}) {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
}

// Debian's mosquitto_pub and mosquitto_sub, 3.1, 3.1.1 and 5.0: a queue
// keeps what was published before anyone subscribed, and a clean-session
// mosquitto_sub with a client ID resumes a pubsub rule where it left.
func TestOffline_Mosquitto(t *testing.T) {
	t.Parallel()
	b := startOffline(t, OfflineRule{Filter: "mq/jobs/+", Mode: OfflineQueue}, OfflineRule{Filter: "mq/news", Mode: OfflinePubsub})
	for _, v := range mosqVersions {
		topic := "mq/jobs/" + v.flag
		for i := range 3 {
			runMosq(t, b.addr, "mosquitto_pub", "-V", v.flag, "-q", "1", "-t", topic, "-m", fmt.Sprintf("job-%d", i))
		}
		out := runMosq(t, b.addr, "mosquitto_sub", "-V", v.flag, "-q", "1", "-t", topic, "-C", "3", "-W", "10")
		if got := lines(out); !slices.Equal(got, []string{"job-0", "job-1", "job-2"}) {
			t.Fatalf("%s: queue backlog %q", v.name, got)
		}

		id := "mosq-reader-" + v.flag
		sub := startMosq(t, b.addr, "mosquitto_sub", "-V", v.flag, "-i", id, "-q", "1", "-t", "mq/news", "-C", "2", "-W", "10")
		waitSubscribed(t, b.srv, id, 1)
		for i := range 5 {
			if i == 2 {
				// Away between its 2nd and 3rd message.
				if got := lines(sub.mustSucceed(t)); !slices.Equal(got, []string{"n0", "n1"}) {
					t.Fatalf("%s: first reading %q", v.name, got)
				}
				waitSessionGone(t, b.srv, id)
			}
			runMosq(t, b.addr, "mosquitto_pub", "-V", v.flag, "-q", "1", "-t", "mq/news", "-m", fmt.Sprintf("n%d", i))
		}
		out = runMosq(t, b.addr, "mosquitto_sub", "-V", v.flag, "-i", id, "-q", "1", "-t", "mq/news", "-C", "3", "-W", "10")
		if got := lines(out); !slices.Equal(got, []string{"n2", "n3", "n4"}) {
			t.Fatalf("%s: clean session read from its position %q, want n2 n3 n4", v.name, got)
		}
		b.restart() // next version: a fresh start, positions kept
	}
}

// A queue message goes only to a consumer the ACL lets read it: one that
// may not is not given it (nor does it use it up).
func TestOffline_QueueRespectsACL(t *testing.T) {
	t.Parallel()
	st, err := boltstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the broker's own cleanup
	o := testOptions()
	o.Store = st
	o.Offline = []OfflineRule{{Filter: "acl/#", Mode: OfflineQueue}}
	acl := &fakeACL{deny: func(op, id, _, topic string) bool {
		return op == "receive" && id == "no-secrets" && topic == "acl/secret"
	}}
	s, addr := newTestListener(t, o, ListenerOptions{Auth: NewAuth(AuthPolicy{AllowAnonymous: true, ACL: acl})})
	denied := consume(t, addr, packet.V5, "no-secrets", 0, "acl/#", 1)
	pub := dialRaw(t, addr, packet.V5)
	pub.mustConnect("acl-pub", true)
	publishN(t, pub, 6, "m", func(i int) string { return []string{"acl/secret", "acl/open"}[i%2] }, func(int) byte { return 1 })
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := denied.received(); !slices.Equal(got, []string{"m1", "m3", "m5"}) {
			return fmt.Errorf("consumer without read access to acl/secret got %v", got)
		}
		if w, _ := s.offline.queues[0].stats(); w != 3 {
			return fmt.Errorf("%d messages waiting, want the 3 secret ones", w)
		}
		return nil
	})
	allowed := consume(t, addr, packet.V311, "all-secrets", 0, "acl/#", 1)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := allowed.received(); !slices.Equal(got, []string{"m0", "m2", "m4"}) {
			return fmt.Errorf("consumer with read access got %v", got)
		}
		return nil
	})
}

// A pubsub rule delivers a message for its retention only: one stored
// longer ago is passed over by a reader coming back.
func TestOffline_PubsubRetention(t *testing.T) {
	t.Parallel()
	var ago atomic.Int64 // how far the store's clock is behind
	o := testOptions()
	o.Offline = []OfflineRule{{Filter: "ret/#", Mode: OfflinePubsub, Retention: time.Hour}}
	b := startDurable(t, t.TempDir(), o, &boltstore.Options{Now: func() time.Time { return time.Now().Add(-time.Duration(ago.Load())) }})
	consume(t, b.addr, packet.V5, "ret-reader", 0, "ret/#", 1).stop() // from now
	pub := dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("ret-pub", true)
	ago.Store(int64(2 * time.Hour))
	publishN(t, pub, 2, "old", func(int) string { return "ret/a" }, func(int) byte { return 1 })
	ago.Store(0)
	publishN(t, pub, 2, "new", func(int) string { return "ret/a" }, func(int) byte { return 1 })
	readPubsub(t, b.addr, packet.V5, "ret-reader", "ret/#", []string{"new0", "new1"})
}
