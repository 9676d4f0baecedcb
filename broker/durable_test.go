package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"gatemq/boltstore"
	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// durableBroker is a broker with a store in dir that a test can stop and
// start again, as a restart.
type durableBroker struct {
	t     *testing.T
	dir   string
	opts  Options
	lopts ListenerOptions
	sopts *boltstore.Options
	srv   *Server
	store *boltstore.Store
	addr  string
	errc  chan error
}

func startDurable(t *testing.T, dir string, opts Options, sopts *boltstore.Options) *durableBroker {
	t.Helper()
	b := &durableBroker{t: t, dir: dir, opts: opts, sopts: sopts}
	b.start("127.0.0.1:0")
	t.Cleanup(b.stop)
	return b
}

func (b *durableBroker) start(addr string) {
	b.t.Helper()
	st, err := boltstore.Open(b.dir, b.sopts)
	if err != nil {
		b.t.Fatal(err)
	}
	o := b.opts
	o.Store = st
	srv := New(o)
	if err := srv.Restore(); err != nil {
		b.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.t.Fatal(err)
	}
	b.srv, b.store, b.addr, b.errc = srv, st, ln.Addr().String(), make(chan error, 1)
	go func() { b.errc <- srv.ServeListener(ln, b.lopts) }()
}

// stop closes the broker and the store, as a clean stop does.
func (b *durableBroker) stop() {
	if b.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.srv.Close(ctx)
	<-b.errc
	if err := b.store.Check(); err != nil {
		b.t.Errorf("store integrity after stop: %v", err)
	}
	b.store.Close()
	b.srv = nil
}

// restart stops the broker and starts it again, on a new port: the old
// one may be taken by another test meanwhile. Clients dial b.addr.
func (b *durableBroker) restart() {
	b.stop()
	b.start("127.0.0.1:0")
}

func TestDurable_OfflineMessagesSurviveRestart(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		id := "durable-sub-" + v.String()
		sub := dialRaw(t, b.addr, v)
		props := packet.Properties{}
		if v == packet.V5 {
			props = withExpiry(3600)
		}
		sub.connect(&packet.Connect{ClientID: id, CleanStart: false, KeepAlive: 60, Properties: props})
		sub.subscribe(1, packet.Subscription{Filter: "dur/" + v.String() + "/#", QoS: 2})
		sub.nc.Close()
	}
	pub := dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("durable-pub", true)
	const n = 20
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		for i := 1; i <= n; i++ {
			qos := byte(1 + i%2)
			if r := pub.publishAck(&packet.Publish{Topic: "dur/" + v.String() + "/t", QoS: qos, PacketID: uint16(i), Payload: []byte(fmt.Sprint(i))}); r.Failed() {
				t.Fatalf("publish %d: %v", i, r)
			}
		}
	}
	if got := b.store.Stats().Records; got != 2*n {
		t.Fatalf("%d records stored, want %d (once each)", got, 2*n)
	}
	b.restart()
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		sub := dialRaw(t, b.addr, v)
		props := packet.Properties{}
		if v == packet.V5 {
			props = withExpiry(3600)
		}
		ack := sub.connect(&packet.Connect{ClientID: "durable-sub-" + v.String(), CleanStart: false, KeepAlive: 60, Properties: props})
		if !ack.SessionPresent {
			t.Fatalf("%s: session not present after restart", v)
		}
		for i, p := range sub.recvPublishes(n) {
			if string(p.Payload) != fmt.Sprint(i+1) || p.QoS != byte(1+(i+1)%2) {
				t.Fatalf("%s: message %d: got %q QoS %d", v, i+1, p.Payload, p.QoS)
			}
		}
		sub.expectNothing(100 * time.Millisecond)
	}
}

func TestDurable_StoredOnceAndOnlyForDurableTopics(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	for i := 0; i < 10; i++ {
		c, _ := connect5(t, b.addr, fmt.Sprintf("fan-%d", i), false, withExpiry(600))
		c.subscribe(1, packet.Subscription{Filter: "fan/+", QoS: 1})
		c.disconnect()
	}
	ram := dialRaw(t, b.addr, packet.V311)
	ram.mustConnect("ram-only", true) // clean session: in memory
	ram.subscribe(1, packet.Subscription{Filter: "ram/#", QoS: 1})
	pub := dialRaw(t, b.addr, packet.V311)
	pub.mustConnect("fan-pub", true)
	for i := 1; i <= 5; i++ {
		pub.publishAck(&packet.Publish{Topic: "fan/x", QoS: 1, PacketID: uint16(i), Payload: []byte("x")})
		pub.publishAck(&packet.Publish{Topic: "ram/x", QoS: 1, PacketID: uint16(100 + i), Payload: []byte("y")})
	}
	if got := b.store.Stats().Records; got != 5 {
		t.Fatalf("%d records stored for 5 messages to 10 durable subscribers plus 5 to a RAM one; want 5", got)
	}
	for i := 0; i < 5; i++ {
		ram.recvPublishAck()
	}
}

// pausingStore holds every Append's commit until released, so a test
// can see that nothing is acknowledged before its commit.
type pausingStore struct {
	*boltstore.Store
	mu      sync.Mutex
	held    []func()
	release chan struct{}
}

func (p *pausingStore) AppendOnce(pub, topic string, meta, payload, once []byte, done boltstore.AppendDone) {
	p.Store.AppendOnce(pub, topic, meta, payload, once, boltstore.AppendFunc(func(id boltstore.RecordID, err error) {
		p.mu.Lock()
		p.held = append(p.held, func() { done.AppendDone(id, err) })
		p.mu.Unlock()
	}))
}

func (p *pausingStore) releaseAll() {
	p.mu.Lock()
	held := p.held
	p.held = nil
	p.mu.Unlock()
	for _, f := range held {
		f()
	}
}

// pausedBroker starts a broker on a pausingStore with an offline durable
// session subscribed to stored/#, and a v5 publisher connected to it.
func pausedBroker(t *testing.T) (*pausingStore, *rawClient) {
	t.Helper()
	st, err := boltstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ps := &pausingStore{Store: st}
	o := testOptions()
	o.Store = ps
	_, addr := newTestBroker(t, o)
	c, _ := connect5(t, addr, "durable", false, withExpiry(600))
	c.subscribe(1, packet.Subscription{Filter: "stored/#", QoS: 1})
	c.disconnect()
	pub := dialRaw(t, addr, packet.V5)
	pub.mustConnect("pub", true)
	return ps, pub
}

// waitHeld waits until an append reached the store and is held.
func (p *pausingStore) waitHeld(t *testing.T) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.held) == 0 {
			return errors.New("commit not reached yet")
		}
		return nil
	})
}

func TestDurable_AckAfterCommitInOrder(t *testing.T) {
	t.Parallel()
	ps, pub := pausedBroker(t)
	pub.send(&packet.Publish{Topic: "stored/a", QoS: 1, PacketID: 1, Payload: []byte("1")})
	pub.send(&packet.Publish{Topic: "not-stored", QoS: 1, PacketID: 2, Payload: []byte("2")})
	// Neither acknowledgement may come before the first one's commit:
	// the second waits behind the first [MQTT-4.6.0-2].
	pub.expectNothing(200 * time.Millisecond)
	ps.waitHeld(t)
	ps.releaseAll()
	for _, want := range []uint16{1, 2} {
		if a, ok := pub.recv().(*packet.Puback); !ok || a.PacketID != want {
			t.Fatalf("want PUBACK %d, got %+v", want, a)
		}
	}
}

// TestDurable_RetainedAckWaitsForMessage publishes a retained message to
// a durable session's topic: the retained write commits on its own, and
// the PUBACK must still wait for the message's commit.
func TestDurable_RetainedAckWaitsForMessage(t *testing.T) {
	t.Parallel()
	ps, pub := pausedBroker(t)
	pub.send(&packet.Publish{Topic: "stored/r", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("r")})
	ps.waitHeld(t)
	pub.expectNothing(200 * time.Millisecond) // the retained write is long committed
	ps.releaseAll()
	if a, ok := pub.recv().(*packet.Puback); !ok || a.PacketID != 1 || a.Reason != packet.Success {
		t.Fatalf("want PUBACK 1, got %+v", a)
	}
}

func TestDurable_QuotaRefusesWithoutFalseAck(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), &boltstore.Options{MaxBytes: 1})
	c, _ := connect5(t, b.addr, "durable", false, withExpiry(600))
	c.subscribe(1, packet.Subscription{Filter: "q/#", QoS: 1})
	c.disconnect()
	expectQuotaRefused(t, b.addr, "q/x", []byte("x"))
}

// expectQuotaRefused checks that a QoS 1 message on topic is refused as
// not stored: v5 PUBACK 0x97, a 3.x publisher disconnected without a
// PUBACK (3.x has no negative acknowledgement).
func expectQuotaRefused(t *testing.T, addr, topic string, payload []byte) {
	t.Helper()
	v5 := dialRaw(t, addr, packet.V5)
	v5.mustConnect("refused-pub5", true)
	if r := v5.publishAck(&packet.Publish{Topic: topic, QoS: 1, PacketID: 1, Payload: payload}); r != packet.QuotaExceeded {
		t.Fatalf("v5 PUBACK %v, want quota exceeded", r)
	}
	v3 := dialRaw(t, addr, packet.V311)
	v3.mustConnect("refused-pub3", true)
	v3.send(&packet.Publish{Topic: topic, QoS: 1, PacketID: 1, Payload: payload})
	for _, pk := range v3.expectClosed() {
		if _, ok := pk.(*packet.Puback); ok {
			t.Fatal("3.x publisher acknowledged although the message was not stored")
		}
	}
}

func TestDurable_InflightResentWithSameIDsAfterRestart(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	sub, _ := connect5(t, b.addr, "inflight", false, withExpiry(600))
	sub.subscribe(1, packet.Subscription{Filter: "if/#", QoS: 2})
	pub := dialRaw(t, b.addr, packet.V311)
	pub.mustConnect("pub", true)
	pub.publishAck(&packet.Publish{Topic: "if/1", QoS: 1, PacketID: 1, Payload: []byte("one")})
	pub.publishAck(&packet.Publish{Topic: "if/2", QoS: 2, PacketID: 2, Payload: []byte("two")})
	first := sub.recvPublish()
	second := sub.recvPublish()
	// Acknowledge only the PUBREC of the QoS 2 one, then the broker stops.
	sub.send(&packet.Pubrec{PacketID: second.PacketID})
	if r, ok := sub.recv().(*packet.Pubrel); !ok || r.PacketID != second.PacketID {
		t.Fatalf("want PUBREL, got %+v", r)
	}
	b.restart()
	sub, ack := connect5(t, b.addr, "inflight", false, withExpiry(600))
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	p := sub.recvPublish()
	if !p.Dup || p.PacketID != first.PacketID || string(p.Payload) != "one" {
		t.Fatalf("resent QoS 1: %+v, want DUP, packet ID %d", p, first.PacketID)
	}
	// The QoS 2 message was PUBREC'd: only PUBREL comes again, never the
	// message (exactly once).
	if r, ok := sub.recv().(*packet.Pubrel); !ok || r.PacketID != second.PacketID {
		t.Fatalf("want PUBREL %d again, got %+v", second.PacketID, r)
	}
	sub.send(&packet.Puback{PacketID: p.PacketID})
	sub.send(&packet.Pubcomp{PacketID: second.PacketID})
	sub.expectNothing(150 * time.Millisecond)
}

func TestDurable_RetainedAndExpirySurviveRestart(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	pub := dialRaw(t, b.addr, packet.V311)
	pub.mustConnect("pub", true)
	pub.publishAck(&packet.Publish{Topic: "ret/a", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("kept")})
	pub.publishAck(&packet.Publish{Topic: "ret/b", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("gone")})
	pub.publishAck(&packet.Publish{Topic: "ret/b", QoS: 1, PacketID: 3, Retain: true}) // deletes
	c, _ := connect5(t, b.addr, "short-lived", false, withExpiry(2))
	c.disconnect()
	b.restart()
	if b.srv.sessions.Get("short-lived") == nil {
		t.Fatal("session with 2 s expiry gone right after restart")
	}
	sub := dialRaw(t, b.addr, packet.V311)
	sub.mustConnect("reader", true)
	sub.subscribe(1, packet.Subscription{Filter: "ret/#", QoS: 1})
	if p := sub.recvPublish(); p.Topic != "ret/a" || string(p.Payload) != "kept" || !p.Retain {
		t.Fatalf("retained after restart: %+v", p)
	}
	sub.expectNothing(100 * time.Millisecond)
	// The session expires on the clock it had before the restart.
	testkit.WaitFor(t, 5*time.Second, func() error {
		if b.srv.sessions.Get("short-lived") != nil {
			return errors.New("session still there")
		}
		return nil
	})
}

func TestDurable_WokenOnCommitWhileOnline(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	sub, _ := connect5(t, b.addr, "online-durable", false, withExpiry(600))
	sub.subscribe(1, packet.Subscription{Filter: "live/#", QoS: 1})
	pub := dialRaw(t, b.addr, packet.V311)
	pub.mustConnect("pub", true)
	for i := 1; i <= 50; i++ {
		pub.send(&packet.Publish{Topic: fmt.Sprintf("live/%d", i%20), QoS: 1, PacketID: uint16(i), Payload: []byte(fmt.Sprint(i))})
	}
	for i, p := range sub.recvPublishes(50) {
		if string(p.Payload) != fmt.Sprint(i+1) {
			t.Fatalf("message %d: %q (order across streams)", i+1, p.Payload)
		}
	}
}

// A durable publisher's QoS 2 message stored before a crash, resent after
// it (no PUBREC reached the publisher), is recognised: stored once,
// delivered once.
func TestDurable_InboundQoS2ExactlyOnceAcrossRestart(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	sub, _ := connect5(t, b.addr, "once-sub", false, withExpiry(600))
	sub.subscribe(1, packet.Subscription{Filter: "once/#", QoS: 2})
	sub.disconnect()
	pub, _ := connect5(t, b.addr, "once-pub", false, withExpiry(600))
	pub.send(&packet.Publish{Topic: "once/t", QoS: 2, PacketID: 9, Payload: []byte("only once")})
	if r, ok := pub.recv().(*packet.Pubrec); !ok || r.Reason.Failed() {
		t.Fatalf("want PUBREC, got %+v", r)
	}
	b.restart()
	if got := b.store.Stats().Records; got != 0 {
		t.Fatalf("stats after restart count %d", got) // fresh counters
	}
	pub, _ = connect5(t, b.addr, "once-pub", false, withExpiry(600))
	pub.send(&packet.Publish{Dup: true, Topic: "once/t", QoS: 2, PacketID: 9, Payload: []byte("only once")})
	if r, ok := pub.recv().(*packet.Pubrec); !ok || r.Reason.Failed() {
		t.Fatalf("want PUBREC for the resend, got %+v", r)
	}
	pub.send(&packet.Pubrel{PacketID: 9})
	if c, ok := pub.recv().(*packet.Pubcomp); !ok || c.Reason != packet.Success {
		t.Fatalf("want PUBCOMP success, got %+v", c)
	}
	if got := b.store.Stats().Records; got != 0 {
		t.Fatalf("the resent PUBLISH was stored again (%d records)", got)
	}
	sub, _ = connect5(t, b.addr, "once-sub", false, withExpiry(600))
	if got := sub.recvPublishes(1); string(got[0].Payload) != "only once" {
		t.Fatalf("got %q", got[0].Payload)
	}
	sub.expectNothing(150 * time.Millisecond)
}

// A durable session's will survives a restart: one waiting for its delay
// is published when due, one whose client was connected at the stop is
// published as if the connection had dropped then.
func TestDurable_WillSurvivesRestart(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	watch := func() *rawClient {
		w, _ := connect5(t, b.addr, "will-watcher", false, withExpiry(600))
		w.subscribe(1, packet.Subscription{Filter: "wills/#", QoS: 1})
		return w
	}
	withWill := func(id string, delay uint32) *rawClient {
		c := dialRaw(t, b.addr, packet.V5)
		cp := &packet.Connect{ClientID: id, KeepAlive: 60, Properties: withExpiry(600), WillFlag: true, WillQoS: 1,
			WillTopic: "wills/" + id, WillPayload: []byte(id + " gone")}
		cp.WillProperties.WillDelay = delay
		cp.WillProperties.Present.Add(packet.PropWillDelay)
		if ack := c.connect(cp); ack.Reason != packet.Success {
			t.Fatalf("connect %s: %v", id, ack.Reason)
		}
		return c
	}
	w := watch()
	dropped := withWill("dropped", 2)
	withWill("connected", 1)
	dropped.nc.Close() // abnormal close: its will waits 2 s
	testkit.WaitFor(t, 5*time.Second, func() error {
		b.srv.mu.Lock()
		defer b.srv.mu.Unlock()
		if b.srv.wills["dropped"] == nil {
			return errors.New("will not pending yet")
		}
		return nil
	})
	w.disconnect()
	start := time.Now()
	b.restart()
	w = watch()
	got := map[string]bool{}
	for _, p := range w.recvPublishes(2) {
		got[string(p.Payload)] = true
	}
	if !got["dropped gone"] || !got["connected gone"] {
		t.Fatalf("wills after restart: %v", got)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("wills published %v after the restart, before their delay", el)
	}
}

// A shared subscription works for durable sessions: each message is
// stored once and assigned to one member, survives a restart and reaches
// exactly that member.
func TestDurable_SharedSubscription(t *testing.T) {
	t.Parallel()
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	members := []string{"shared-a", "shared-b"}
	for _, id := range members {
		c, _ := connect5(t, b.addr, id, false, withExpiry(600))
		c.subscribe(1, packet.Subscription{Filter: "$share/g/jobs/#", QoS: 1})
		c.disconnect()
	}
	pub := dialRaw(t, b.addr, packet.V311)
	pub.mustConnect("jobs-pub", true)
	const n = 10
	for i := 1; i <= n; i++ {
		if r := pub.publishAck(&packet.Publish{Topic: "jobs/x", QoS: 1, PacketID: uint16(i), Payload: []byte(fmt.Sprint(i))}); r.Failed() {
			t.Fatalf("publish %d: %v", i, r)
		}
	}
	if got := b.store.Stats().Records; got != n {
		t.Fatalf("%d records for %d messages", got, n)
	}
	b.restart()
	seen := map[string]string{}
	for _, id := range members {
		c, _ := connect5(t, b.addr, id, false, withExpiry(600))
		got := c.recvPublishes(n / 2)
		for _, p := range got {
			if other, dup := seen[string(p.Payload)]; dup {
				t.Fatalf("message %s delivered to %s and %s", p.Payload, other, id)
			}
			seen[string(p.Payload)] = id
		}
		c.expectNothing(100 * time.Millisecond)
		c.disconnect()
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages delivered, want %d", len(seen), n)
	}
	// Delivered and acknowledged: nothing comes again.
	b.restart()
	for _, id := range members {
		c, _ := connect5(t, b.addr, id, false, withExpiry(600))
		c.expectNothing(150 * time.Millisecond)
	}
}

// TestDurable_ClientIDTooLongForTheStore: a persistent session whose
// client ID exceeds what a store key can hold stays in memory and works
// (the store refuses its writes alone: TestStore_KeyTooLongFailsAlone).
func TestDurable_ClientIDTooLongForTheStore(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxClientIDLen = 65535
	b := startDurable(t, t.TempDir(), o, nil)
	long := strings.Repeat("L", 40000) // over bbolt's key limit, 32 KiB
	big := dialRaw(t, b.addr, packet.V5)
	big.connect(&packet.Connect{ClientID: long, KeepAlive: 60, Properties: withExpiry(3600)})
	big.subscribe(1, packet.Subscription{Filter: "long/#", QoS: 1})
	other := dialRaw(t, b.addr, packet.V5)
	other.connect(&packet.Connect{ClientID: "short", KeepAlive: 60, Properties: withExpiry(3600)})
	other.subscribe(1, packet.Subscription{Filter: "long/#", QoS: 1})

	pub := dialRaw(t, b.addr, packet.V5)
	pub.mustConnect("long-pub", true)
	if r := pub.publishAck(&packet.Publish{Topic: "long/t", QoS: 1, PacketID: 1, Payload: []byte("x")}); r.Failed() {
		t.Fatalf("publish: %v", r)
	}
	for _, c := range []*rawClient{big, other} {
		if ps := c.recvPublishes(1); string(ps[0].Payload) != "x" {
			t.Fatalf("got %q", ps[0].Payload)
		}
	}
	b.restart()
	ack := dialRaw(t, b.addr, packet.V5).connect(&packet.Connect{ClientID: "short", KeepAlive: 60, Properties: withExpiry(3600)})
	if !ack.SessionPresent {
		t.Fatal("the other durable session was not stored")
	}
	ack = dialRaw(t, b.addr, packet.V5).connect(&packet.Connect{ClientID: long, KeepAlive: 60, Properties: withExpiry(3600)})
	if ack.SessionPresent {
		t.Fatal("a session the store cannot hold came back after a restart")
	}
}
