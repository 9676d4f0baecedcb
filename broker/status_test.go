package broker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/boltstore"
	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

func startDurableWith(t *testing.T, dir string, opts Options, lopts ListenerOptions) *durableBroker {
	t.Helper()
	b := &durableBroker{t: t, dir: dir, opts: opts, lopts: lopts}
	b.start("127.0.0.1:0")
	t.Cleanup(b.stop)
	return b
}

// nextStatusEvent returns the next client event c receives about
// clientID, skipping those about other clients (the watcher's own).
func nextStatusEvent(t *testing.T, c *v5Client, clientID string) (string, statusPayload) {
	t.Helper()
	for range 100 {
		m := c.recv()
		var p statusPayload
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatalf("event %s: %q: %v", m.Topic, m.Payload, err)
		}
		if m.QoS != 0 || m.Retain {
			t.Fatalf("event %s: QoS %d retain %v, want 0 and not retained", m.Topic, m.QoS, m.Retain)
		}
		if p.ClientID == clientID {
			return m.Topic, p
		}
	}
	t.Fatalf("no event about %s", clientID)
	return "", statusPayload{}
}

// storedStatus polls the store until fn accepts clientID's record there.
func storedStatus(t *testing.T, st *boltstore.Store, clientID string, fn func(boltstore.ClientStatus) error) boltstore.ClientStatus {
	t.Helper()
	var r boltstore.ClientStatus
	testkit.WaitFor(t, 5*time.Second, func() error {
		var ok bool
		var err error
		if r, ok, err = st.Status(clientID); err != nil || !ok {
			return fmt.Errorf("status of %s: %v %v", clientID, ok, err)
		}
		return fn(r)
	})
	return r
}

func isOnline(want bool) func(boltstore.ClientStatus) error {
	return func(r boltstore.ClientStatus) error {
		if r.Online != want {
			return fmt.Errorf("%s online %v, want %v", r.ClientID, r.Online, want)
		}
		return nil
	}
}

func onlineAt(t *testing.T, st *boltstore.Store) []string {
	t.Helper()
	var ids []string
	if err := st.OnlineStatuses(st.Site(), func(r boltstore.ClientStatus) error { ids = append(ids, r.ClientID); return nil }, nil); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestStatus_RecordsAndEvents connects and disconnects clients of every
// protocol version: each gets a record, in memory at once and in the
// store soon after, and a $SYS event on connect and on disconnect, which
// the ACL keeps from a watcher without read access.
func TestStatus_RecordsAndEvents(t *testing.T) {
	acl := &fakeACL{}
	acl.setDeny(func(op, id, user, topic string) bool {
		return op == "receive" && user == "bob" && strings.HasPrefix(topic, "$SYS/")
	})
	lopts := ListenerOptions{Auth: NewAuth(AuthPolicy{AllowAnonymous: true, ACL: acl,
		Passwords: fakePasswords{"alice": "pw", "bob": "pw", "plc": "pw"}})}
	b := startDurableWith(t, t.TempDir(), testOptions(), lopts)
	site := b.store.Site().String()
	watch := connectV5(t, b.addr, &paho.Connect{ClientID: "watcher", CleanStart: true, UsernameFlag: true, Username: "alice",
		PasswordFlag: true, Password: []byte("pw")})
	watch.subscribe("$SYS/brokers/+/clients/+/#")
	denied := connectV5(t, b.addr, &paho.Connect{ClientID: "denied", CleanStart: true, UsernameFlag: true, Username: "bob",
		PasswordFlag: true, Password: []byte("pw")})
	denied.subscribe("$SYS/brokers/+/clients/+/#", "sentinel")

	before := time.Now().Truncate(time.Millisecond)
	v5 := dialRaw(t, b.addr, packet.V5)
	if ack := v5.connect(&packet.Connect{ClientID: "dev-5", CleanStart: true, KeepAlive: 42, UsernameFlag: true,
		Username: "plc", PasswordFlag: true, Password: []byte("pw")}); ack.Reason != packet.Success {
		t.Fatal(ack.Reason)
	}
	v311 := dialRaw(t, b.addr, packet.V311)
	v311.mustConnect("dev-311", false)
	v31 := dialRaw(t, b.addr, packet.V31)
	v31.mustConnect("dev-31", true)

	topic, ev := nextStatusEvent(t, watch, "dev-5")
	if want := "$SYS/brokers/" + site + "/clients/dev-5/connected"; topic != want {
		t.Fatalf("topic %q, want %q", topic, want)
	}
	at, err := time.Parse(time.RFC3339, ev.ConnectedAt)
	if err != nil || ev.Username != "plc" || ev.ProtocolVersion != "5.0" || ev.KeepAlive != 42 || !ev.CleanStart ||
		ev.Remote != v5.nc.LocalAddr().String() || ev.Site != site || at.UnixMilli() != ev.ConnectedAtMs ||
		at.Before(before) || at.After(time.Now()) || ev.DisconnectedAt != "" || ev.Reason != "" {
		t.Fatalf("connected event %+v (%v)", ev, err)
	}
	for _, tc := range []struct{ id, proto string }{{"dev-311", "3.1.1"}, {"dev-31", "3.1"}} { // in connect order
		id, proto := tc.id, tc.proto
		topic, ev := nextStatusEvent(t, watch, id)
		if !strings.HasSuffix(topic, "/clients/"+id+"/connected") || ev.ProtocolVersion != proto || ev.CleanStart != (id == "dev-31") {
			t.Fatalf("%s: %s %+v", id, topic, ev)
		}
	}

	// In memory at once, in the store soon.
	r, ok, err := b.srv.ClientStatus("dev-5")
	if err != nil || !ok || !r.Online || r.Username != "plc" || r.KeepAlive != 42 || r.Protocol != 5 || !r.CleanStart ||
		r.Site != b.store.Site() || r.OnlineAt.UnixMilli() != ev.ConnectedAtMs || !r.OfflineAt.IsZero() {
		t.Fatalf("ClientStatus(dev-5) = %+v %v %v", r, ok, err)
	}
	stored := storedStatus(t, b.store, "dev-5", isOnline(true))
	if stored.Remote != r.Remote || stored.Username != "plc" || !stored.OnlineAt.Equal(r.OnlineAt) {
		t.Fatalf("stored %+v, in memory %+v", stored, r)
	}
	storedStatus(t, b.store, "dev-31", isOnline(true))
	if ids := onlineAt(t, b.store); !slices.Equal(ids, []string{"denied", "dev-31", "dev-311", "dev-5", "watcher"}) {
		t.Fatalf("online index: %v", ids)
	}

	// Disconnects: DISCONNECT, a dropped connection, a kick.
	v5.disconnect()
	_, ev = nextStatusEvent(t, watch, "dev-5")
	off, err := time.Parse(time.RFC3339, ev.DisconnectedAt)
	if err != nil || ev.Reason != "normal" || off.UnixMilli() != ev.DisconnectedAtMs || off.Before(at) || ev.ConnectedAtMs != at.UnixMilli() {
		t.Fatalf("disconnected event %+v (%v)", ev, err)
	}
	offMs := ev.DisconnectedAtMs
	v311.nc.Close()
	if topic, ev := nextStatusEvent(t, watch, "dev-311"); !strings.HasSuffix(topic, "/disconnected") || ev.Reason != "network" {
		t.Fatalf("dropped: %s %+v", topic, ev)
	}
	b.srv.Kick("dev-31", 5*time.Second)
	if _, ev := nextStatusEvent(t, watch, "dev-31"); ev.Reason != "kicked" {
		t.Fatalf("kicked: %+v", ev)
	}
	stored = storedStatus(t, b.store, "dev-5", isOnline(false))
	if stored.Reason != "normal" || stored.OfflineAt.UnixMilli() != offMs {
		t.Fatalf("stored after disconnect: %+v", stored)
	}
	storedStatus(t, b.store, "dev-31", isOnline(false))
	storedStatus(t, b.store, "dev-311", isOnline(false))
	if ids := onlineAt(t, b.store); !slices.Equal(ids, []string{"denied", "watcher"}) {
		t.Fatalf("online index after disconnects: %v", ids)
	}
	offline, err := b.srv.ClientStatuses(StatusOffline)
	if err != nil || len(offline) != 3 || offline[0].ClientID != "dev-31" || offline[1].ClientID != "dev-311" || offline[2].ClientID != "dev-5" {
		t.Fatalf("ClientStatuses(offline) = %+v %v", offline, err)
	}

	// The watcher without read access to $SYS got none of it: the
	// sentinel, published after every event above, is its first message.
	watch.publish(&paho.Publish{Topic: "sentinel", Payload: []byte("x")})
	if m := denied.recv(); m.Topic != "sentinel" {
		t.Fatalf("watcher without $SYS read access got %s %q", m.Topic, m.Payload)
	}
}

// holdingStatus is a store whose status writes are held until released,
// and that records what each write carried.
type holdingStatus struct {
	*boltstore.Store
	mu      sync.Mutex
	batches [][]boltstore.ClientStatus
	held    []func()
	pass    bool // hold nothing from now on
}

func (h *holdingStatus) PutStatus(recs []boltstore.ClientStatus, done func(error)) {
	h.mu.Lock()
	h.batches = append(h.batches, slices.Clone(recs))
	pass := h.pass
	if !pass {
		h.held = append(h.held, func() { h.Store.PutStatus(recs, done) })
	}
	h.mu.Unlock()
	if pass {
		h.Store.PutStatus(recs, done)
	}
}

// release lets the held writes go; with stop, later ones are not held.
func (h *holdingStatus) release(stop bool) {
	h.mu.Lock()
	held := h.held
	h.held, h.pass = nil, h.pass || stop
	h.mu.Unlock()
	for _, f := range held {
		f()
	}
}

func (h *holdingStatus) writes() [][]boltstore.ClientStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.batches)
}

// TestStatus_WritesCoalescedOffTheConnectPath: while a status write is
// held in the store, clients keep connecting (CONNACK does not wait for
// it) and no second write starts; the next one carries each client's
// latest record once.
func TestStatus_WritesCoalescedOffTheConnectPath(t *testing.T) {
	st, err := boltstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // cleanups run last first: after the broker's Close
	h := &holdingStatus{Store: st}
	o := testOptions()
	o.Store = h
	s, addr := newTestBroker(t, o)
	// Before the broker's Close, which waits for the last write.
	t.Cleanup(func() { h.release(true) })

	first := dialRaw(t, addr, packet.V311)
	first.mustConnect("first", true)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if n := len(h.writes()); n != 1 {
			return fmt.Errorf("%d writes", n)
		}
		return nil
	})
	const clients, cycles = 5, 10
	for i := range clients {
		for j := range cycles {
			c := dialRaw(t, addr, packet.V311)
			c.mustConnect(fmt.Sprint("cyc-", i), true) // CONNACK while the write is held
			if j < cycles-1 || i%2 == 0 {
				c.disconnect()
			}
		}
	}
	// Every change is in memory; still only the first write.
	testkit.WaitFor(t, 5*time.Second, func() error {
		off, err := s.ClientStatuses(StatusOffline)
		if err != nil || len(off) != 3 {
			return fmt.Errorf("offline %d %v", len(off), err)
		}
		return nil
	})
	if n := len(h.writes()); n != 1 {
		t.Fatalf("%d writes started while one was held", n)
	}
	h.release(false)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if n := len(h.writes()); n != 2 {
			return fmt.Errorf("%d writes", n)
		}
		return nil
	})
	second := h.writes()[1]
	var ids []string
	for _, r := range second {
		ids = append(ids, r.ClientID)
		if want := r.ClientID == "cyc-1" || r.ClientID == "cyc-3"; r.Online != want {
			t.Errorf("%s online %v in the write, want %v", r.ClientID, r.Online, want)
		}
	}
	if !slices.Equal(ids, []string{"cyc-0", "cyc-1", "cyc-2", "cyc-3", "cyc-4"}) {
		t.Fatalf("second write carries %v, want each client once", ids)
	}
	h.release(true)
	storedStatus(t, st, "cyc-4", isOnline(false))
	storedStatus(t, st, "cyc-3", isOnline(true))
}

// TestStatus_Restart: a clean stop records the disconnects of the clients
// still connected (reason "shutdown"); records a crash left online are
// turned offline at the restart, reason "broker-restart". Both keep
// their other fields.
func TestStatus_Restart(t *testing.T) {
	dir := t.TempDir()
	b := startDurable(t, dir, testOptions(), nil)
	c := dialRaw(t, b.addr, packet.V311)
	c.mustConnect("stays", true)
	storedStatus(t, b.store, "stays", isOnline(true))
	stopAt := time.Now().Truncate(time.Millisecond)
	b.stop()
	stoppedAt := time.Now()

	// A crash: records left online, as a broker killed before its
	// disconnects were written leaves them.
	st, err := boltstore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	crashed := boltstore.ClientStatus{ClientID: "crashed", Online: true, OnlineAt: time.UnixMilli(1_700_000_000_000),
		Site: st.Site(), Remote: "10.1.1.1:1234", Protocol: 4, KeepAlive: 30, Username: "u"}
	errc := make(chan error, 1)
	st.PutStatus([]boltstore.ClientStatus{crashed}, func(err error) { errc <- err })
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st.Close()

	restartAt := time.Now().Truncate(time.Millisecond)
	b.start("127.0.0.1:0")
	r, ok, err := b.srv.ClientStatus("stays")
	if err != nil || !ok || r.Online || r.Reason != "shutdown" || r.OfflineAt.Before(stopAt) || r.OfflineAt.After(stoppedAt) {
		t.Fatalf("after a clean stop: %+v %v %v (stopped between %v and %v)", r, ok, err, stopAt, stoppedAt)
	}
	r, ok, err = b.srv.ClientStatus("crashed")
	if err != nil || !ok || r.Online || r.Reason != "broker-restart" || r.OfflineAt.Before(restartAt) || r.OfflineAt.After(time.Now()) {
		t.Fatalf("after a crash: %+v %v %v (restarted at %v)", r, ok, err, restartAt)
	}
	if r.Remote != crashed.Remote || !r.OnlineAt.Equal(crashed.OnlineAt) || r.Username != "u" || r.KeepAlive != 30 {
		t.Fatalf("restart changed more than the state: %+v", r)
	}
	if ids := onlineAt(t, b.store); len(ids) != 0 {
		t.Fatalf("online index after restart: %v", ids)
	}
	// The store agrees, and the same client connecting again is online.
	c = dialRaw(t, b.addr, packet.V311)
	c.mustConnect("crashed", true)
	storedStatus(t, b.store, "crashed", isOnline(true))
}

// TestStatus_NoStore: without a store the records are in memory and the
// site is "local"; a client ID that cannot be a topic level gets a
// record but no event.
func TestStatus_NoStore(t *testing.T) {
	s, addr := newTestBroker(t, testOptions())
	watch := connectV5(t, addr, &paho.Connect{ClientID: "watcher", CleanStart: true})
	watch.subscribe("$SYS/brokers/#")
	odd := dialRaw(t, addr, packet.V311)
	odd.mustConnect("odd+#id", true)
	plain := dialRaw(t, addr, packet.V311)
	plain.mustConnect("plain", true)
	topic, ev := nextStatusEvent(t, watch, "plain")
	if topic != "$SYS/brokers/local/clients/plain/connected" || ev.Site != "local" {
		t.Fatalf("%s %+v", topic, ev)
	}
	r, ok, err := s.ClientStatus("odd+#id")
	if err != nil || !ok || !r.Online || SiteName(r.Site) != "local" {
		t.Fatalf("ClientStatus(odd+#id) = %+v %v %v", r, ok, err)
	}
	odd.disconnect()
	plain.disconnect()
	// The events come in order: none for odd+#id up to plain's
	// disconnect, published after it.
	for done := false; !done; {
		m := watch.recv()
		if strings.Contains(m.Topic, "odd") || strings.Contains(string(m.Payload), "odd") {
			t.Fatalf("event published for a client ID with wildcards: %s %s", m.Topic, m.Payload)
		}
		done = m.Topic == "$SYS/brokers/local/clients/plain/disconnected"
	}
	testkit.WaitFor(t, 5*time.Second, func() error {
		all, err := s.ClientStatuses(StatusAll)
		if err != nil || len(all) != 3 || all[0].ClientID != "odd+#id" || all[0].Online || all[1].ClientID != "plain" || all[1].Online {
			return fmt.Errorf("ClientStatuses(all) = %+v %v", all, err)
		}
		return nil
	})
}

// TestStatus_ManyCycles runs 10,000 connections of several clients in
// parallel, connecting and disconnecting (DISCONNECT or a dropped
// socket), and checks every record, in memory and in the store, and the
// online index.
func TestStatus_ManyCycles(t *testing.T) {
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	const workers, cycles = 8, 1250 // 10,000 connections
	versions := []packet.Version{packet.V31, packet.V311, packet.V5}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	open := make([]net.Conn, workers)
	t.Cleanup(func() {
		for _, nc := range open {
			if nc != nil {
				nc.Close()
			}
		}
	})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("cycler-", w)
			for i := range cycles {
				v := versions[(w+i)%len(versions)]
				last := i == cycles-1
				nc, err := statusCycle(b.addr, id, v, uint16(100+w), !last || w%2 == 1, i%2 == 1)
				if err != nil {
					errs <- fmt.Errorf("%s cycle %d: %w", id, i, err)
					return
				}
				open[w] = nc
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Workers with an even number stay connected after their last cycle,
	// whose connection ends with the test; odd ones ended their last
	// connection with DISCONNECT (their last cycle is odd).
	check := func(r boltstore.ClientStatus) error {
		var w int
		fmt.Sscanf(r.ClientID, "cycler-%d", &w)
		lastV := versions[(w+cycles-1)%len(versions)]
		switch {
		case r.Online != (w%2 == 0):
			return fmt.Errorf("%s online %v", r.ClientID, r.Online)
		case r.Protocol != byte(lastV) || r.KeepAlive != uint16(100+w):
			return fmt.Errorf("%s: protocol %d keepalive %d, want the last connection's %d and %d", r.ClientID, r.Protocol, r.KeepAlive, lastV, 100+w)
		case !r.Online && (r.Reason != "normal" || r.OfflineAt.Before(r.OnlineAt)):
			return fmt.Errorf("%s: offline %+v", r.ClientID, r)
		case r.Online && (!r.OfflineAt.IsZero() || r.Reason != ""):
			return fmt.Errorf("%s: online %+v", r.ClientID, r)
		}
		return nil
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		for _, f := range []StatusFilter{StatusAll, StatusOnline, StatusOffline} {
			recs, err := b.srv.ClientStatuses(f)
			if err != nil {
				return err
			}
			if want := map[StatusFilter]int{StatusAll: workers, StatusOnline: workers / 2, StatusOffline: workers / 2}[f]; len(recs) != want {
				return fmt.Errorf("ClientStatuses(%s): %d records, want %d", f, len(recs), want)
			}
			for _, r := range recs {
				if err := check(r); err != nil {
					return err
				}
			}
		}
		n := 0
		err := b.store.Statuses(func(r boltstore.ClientStatus) error { n++; return check(r) }, nil)
		if err == nil && n != workers {
			err = fmt.Errorf("%d records in the store", n)
		}
		return err
	})
	ids := onlineAt(t, b.store)
	sort.Strings(ids)
	if !slices.Equal(ids, []string{"cycler-0", "cycler-2", "cycler-4", "cycler-6"}) {
		t.Fatalf("online index: %v", ids)
	}
	if err := b.store.Check(); err != nil {
		t.Fatal(err)
	}
}

// statusCycle connects id with version v and keepalive ka and, with end,
// ends the connection: DISCONNECT when polite, else by closing the
// socket. It returns the connection it leaves open.
func statusCycle(addr, id string, v packet.Version, ka uint16, end, polite bool) (open net.Conn, err error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil || end {
			nc.Close()
		} else {
			open = nc
		}
	}()
	name := "MQTT"
	if v == packet.V31 {
		name = "MQIsdp"
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(packet.Append(nil, &packet.Connect{ProtocolName: name, Version: v, ClientID: id, CleanStart: true, KeepAlive: ka}, v)); err != nil {
		return nil, err
	}
	br := bufio.NewReader(nc)
	pk, err := packet.Read(br, v, 0)
	if err != nil {
		return nil, err
	}
	if ack, ok := pk.(*packet.Connack); !ok || ack.Reason != packet.Success {
		return nil, fmt.Errorf("CONNACK %+v", pk)
	}
	if !end || !polite {
		return nil, nil
	}
	if _, err := nc.Write(packet.Append(nil, &packet.Disconnect{}, v)); err != nil {
		return nil, err
	}
	// Wait for the broker to close: the next connection of this client
	// ID must not take this one over.
	if _, err := packet.Read(br, v, 0); err == nil {
		return nil, fmt.Errorf("a packet after DISCONNECT")
	}
	return nil, nil
}

// TestStatus_RetentionDeletesOldOfflineRecords: with StatusRetention,
// the records of clients offline for longer go (at start, then every
// statusPruneEvery); newer offline records and online ones stay.
func TestStatus_RetentionDeletesOldOfflineRecords(t *testing.T) {
	dir := t.TempDir()
	st, err := boltstore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	recs := []boltstore.ClientStatus{
		{ClientID: "gone-long-ago", OnlineAt: now.Add(-72 * time.Hour), OfflineAt: now.Add(-48 * time.Hour), Site: st.Site(), Reason: "normal"},
		{ClientID: "gone-lately", OnlineAt: now.Add(-2 * time.Hour), OfflineAt: now.Add(-time.Hour), Site: st.Site(), Reason: "normal"},
	}
	errc := make(chan error, 1)
	st.PutStatus(recs, func(err error) { errc <- err })
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st.Close()

	o := testOptions()
	o.StatusRetention = 24 * time.Hour
	b := startDurable(t, dir, o, nil)
	c := dialRaw(t, b.addr, packet.V5)
	c.mustConnect("here", true) // online: never deleted
	testkit.WaitFor(t, 5*time.Second, func() error {
		if _, ok, err := b.store.Status("gone-long-ago"); err != nil || ok {
			return fmt.Errorf("record offline for 48h still there (%v)", err)
		}
		return nil
	})
	storedStatus(t, b.store, "gone-lately", isOnline(false))
	storedStatus(t, b.store, "here", isOnline(true))
}
