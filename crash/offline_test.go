package crash

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatemq/broker/packet"
)

// The offline message modes (issue 4) through the real binary, killed
// with SIGKILL while consumers are mid-stream, and stopped cleanly once
// (SIGTERM, in the round cleanStop).

const cleanStop = 2

// offlineRun is a broker with one offline rule, its publishers and its
// subscribers, run through rounds that each end with a kill.
type offlineRun struct {
	t            *testing.T
	b            *brokerProc
	seed         uint64
	rng          *rand.Rand
	pubs         []*client
	subs         []*client
	kills, stops int
}

func newOfflineRun(t *testing.T, rule string) *offlineRun {
	set := settings(t)
	dir := t.TempDir()
	if set.keep {
		var err error
		if dir, err = os.MkdirTemp("", "gatemq-offline-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("keeping %s", dir)
	}
	cfg := filepath.Join(dir, "gatemq.toml")
	if err := os.WriteFile(cfg, []byte(brokerConfig+rule), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d (CRASH_SEED=%d replays the schedule)", set.seed, set.seed)
	r := &offlineRun{t: t, seed: set.seed, rng: rand.New(rand.NewPCG(set.seed, set.seed^0x9e3779b97f4a7c15)),
		b: &brokerProc{bin: buildBroker(t), config: cfg, dataDir: filepath.Join(dir, "data"),
			addr: freeAddr(t), logPath: filepath.Join(dir, "broker.log")}}
	t.Cleanup(func() {
		r.b.kill()
		if t.Failed() {
			t.Logf("broker log tail:\n%s", logTail(r.b.logPath, 40))
		}
	})
	return r
}

// rounds runs n rounds: start the broker, connect everyone (subscribers
// first), publish, drop a subscriber's connection and connect it again,
// and kill the broker after a random delay, or stop it with SIGTERM in
// round cleanStop.
func (r *offlineRun) rounds(n int, topic func(pub string, round int) string) {
	t, b := r.t, r.b
	all := append(append([]*client{}, r.subs...), r.pubs...)
	for round := 1; round <= n; round++ {
		for _, p := range r.pubs {
			p.setTopic(topic(p.id, round))
		}
		if err := b.start(); err != nil {
			t.Fatal(err)
		}
		if err := b.waitReady(10 * time.Second); err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, logTail(b.logPath, 30))
		}
		for _, group := range [][]*client{r.subs, r.pubs} {
			var wg sync.WaitGroup
			errs := make(chan error, len(group))
			for _, c := range group {
				wg.Go(func() { errs <- c.connect(b.addr) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("round %d: %v\n%s", round, err, logTail(b.logPath, 30))
				}
			}
		}
		stop := make(chan struct{})
		var runs sync.WaitGroup
		for _, p := range r.pubs {
			runs.Go(func() { p.run(stop) })
		}
		// Traffic; meanwhile a subscriber goes away without DISCONNECT
		// and comes back, with what it had in flight.
		<-time.After(time.Duration(100+r.rng.IntN(300)) * time.Millisecond)
		away := r.subs[r.rng.IntN(len(r.subs))]
		away.drop()
		if err := away.connect(b.addr); err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, logTail(b.logPath, 30))
		}
		<-time.After(time.Duration(200+r.rng.IntN(500)) * time.Millisecond) // until the kill's random moment
		if round == cleanStop {
			if err := b.stop(15 * time.Second); err != nil {
				t.Fatalf("round %d: clean stop: %v", round, err)
			}
			r.stops++
		} else {
			if err := b.kill(); err != nil {
				t.Fatal(err)
			}
			r.kills++
		}
		close(stop)
		for _, c := range all {
			if err := c.waitDown(5 * time.Second); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		runs.Wait()
	}
	// Last start: everyone back, the publishers finish what is in flight.
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	if err := b.waitReady(30 * time.Second); err != nil {
		t.Fatalf("final start: %v\n%s", err, logTail(b.logPath, 30))
	}
	for _, c := range all {
		if err := c.connect(b.addr); err != nil {
			t.Fatalf("final connect: %v\n%s", err, logTail(b.logPath, 30))
		}
	}
	waitAcked(t, r.pubs)
}

// finish disconnects everyone, stops the broker and checks its log and
// store.
func (r *offlineRun) finish() {
	t, b := r.t, r.b
	for _, c := range append(append([]*client{}, r.subs...), r.pubs...) {
		c.disconnect()
	}
	if err := b.stop(15 * time.Second); err != nil {
		t.Errorf("clean stop: %v", err)
	}
	b.checkAfter(t)
}

func roundsFor(t *testing.T) int {
	if v := os.Getenv("CRASH_ROUNDS"); v != "" {
		return settings(t).rounds
	}
	if testing.Short() {
		return 3
	}
	return 8
}

// TestCrash_Queue: ten consumers share a queue (mode = "queue") fed by a
// QoS 1 and a QoS 2 publisher, through kills, a clean stop and a
// consumer going away in each round. Every message acknowledged to its
// publisher must reach a consumer; each goes to exactly one consumer,
// except that a message first delivered at QoS 1 (to a QoS 1 consumer,
// all with clean sessions here) may come again:
//
//   - the consumer's PUBACK took it off the queue in memory, but the
//     kill came before that removal was committed: after the restart it
//     waits in the queue again and goes to the next consumer with room;
//   - the consumer had it, unacknowledged, when its connection went (a
//     kill, or the consumer going away): its clean session ended, so the
//     message went back to the queue, to another consumer or the same.
//
// QoS 2 deliveries go to persistent consumers, whose in-flight messages
// are recorded before they are sent and stay theirs when they go away
// or the broker dies: the message goes again to the same consumer, with
// its packet identifier, and the consumer recognises it. So a message
// first delivered at QoS 2 and delivered again is a failure.
func TestCrash_Queue(t *testing.T) {
	r := newOfflineRun(t, `
[[offline]]
topic = "jobs/#"
mode = "queue"
max_messages = 1000000
`)
	r.pubs = []*client{
		newPublisher("q1", 1, "", 16, time.Millisecond),
		newPublisher("q2", 2, "", 16, time.Millisecond),
	}
	r.subs = []*client{
		newSubscriber("w2a", packet.V5, "jobs/#", 2, 5),
		newSubscriber("w2b", packet.V5, "jobs/#", 2, 20),
		newSubscriber("w2c", packet.V5, "jobs/+/+", 2, 0),
		newSubscriber("w2d", packet.V5, "$share/workers/jobs/#", 2, 10),
		newSubscriber("w2e", packet.V311, "jobs/#", 2, 0),
		newSubscriber("w2f", packet.V311, "jobs/#", 2, 0),
		newCleanSubscriber("w1a", packet.V5, "jobs/#", 1, 3),
		newCleanSubscriber("w1b", packet.V5, "jobs/#", 1, 0),
		newCleanSubscriber("w1c", packet.V311, "jobs/#", 1, 0),
		newCleanSubscriber("w1d", packet.V311, "jobs/+/+", 1, 0),
	}
	r.subs[4].resub = true
	rounds := roundsFor(t)
	// A new topic each round: the queue's streams grow while it runs.
	r.rounds(rounds, func(pub string, round int) string { return fmt.Sprintf("jobs/%s/%d", pub, round%20) })

	// Until every acknowledged message has reached some consumer, or
	// nothing more comes for 10 s.
	missing := func() (int, int) {
		n, got := 0, 0
		for _, p := range r.pubs {
			p.mu.Lock()
			sent, acked := p.sent, append([]bool(nil), p.acked...)
			p.mu.Unlock()
			for q := 1; q <= sent; q++ {
				if !acked[q] {
					continue
				}
				seen := false
				for _, s := range r.subs {
					s.mu.Lock()
					seen = seen || q < len(s.seen[p.id]) && s.seen[p.id][q]
					s.mu.Unlock()
				}
				if !seen {
					n++
				}
			}
		}
		for _, s := range r.subs {
			s.mu.Lock()
			for _, g := range s.got {
				got += len(g)
			}
			s.mu.Unlock()
		}
		return n, got
	}
	drainErr := waitProgress(10*time.Second, missing)
	r.finish()

	// Every delivery of every message, by consumer and QoS.
	type delivery struct {
		sub   string
		qos   byte
		order uint64
	}
	byMsg := map[string][]delivery{}
	perSub := map[string]int{}
	var odd []string
	pubByID := map[string]*client{}
	for _, p := range r.pubs {
		pubByID[p.id] = p
	}
	for _, s := range r.subs {
		odd = append(odd, s.odd...)
		odd = append(odd, s.sessionGap...)
		for pid, seqs := range s.got {
			p := pubByID[pid]
			for i, q := range seqs {
				if p == nil || q > p.sent {
					odd = append(odd, fmt.Sprintf("%s got %s:%d, never published", s.id, pid, q))
					continue
				}
				k := fmt.Sprintf("%s:%d", pid, q)
				byMsg[k] = append(byMsg[k], delivery{s.id, s.gotQoS[pid][i], s.gotOrder[pid][i]})
				perSub[s.id]++
			}
		}
	}
	var published, acked, lost, once, dupQoS1, dupQoS1Extra, dupQoS2 int
	var lostEx, dupQoS2Ex []string
	for _, p := range r.pubs {
		odd = append(odd, p.odd...)
		odd = append(odd, p.nacked...)
		odd = append(odd, p.sessionGap...)
		for q := 1; q <= p.sent; q++ {
			published++
			ds := byMsg[fmt.Sprintf("%s:%d", p.id, q)]
			if p.acked[q] {
				acked++
			}
			switch {
			case len(ds) == 0 && p.acked[q]:
				lost++
				if len(lostEx) < 5 {
					lostEx = append(lostEx, fmt.Sprintf("%s:%d", p.id, q))
				}
			case len(ds) == 1:
				once++
			case len(ds) > 1:
				first := slices.MinFunc(ds, func(a, b delivery) int { return cmp.Compare(a.order, b.order) })
				if first.qos == 1 {
					dupQoS1++
					dupQoS1Extra += len(ds) - 1
				} else {
					dupQoS2++
					if len(dupQoS2Ex) < 5 {
						dupQoS2Ex = append(dupQoS2Ex, fmt.Sprintf("%s:%d %v", p.id, q, ds))
					}
				}
			}
		}
	}
	busy := 0
	var shares []string
	for _, s := range r.subs {
		if perSub[s.id] > 0 {
			busy++
		}
		shares = append(shares, fmt.Sprintf("%s %d", s.id, perSub[s.id]))
	}
	t.Logf(`queue crash test: %d rounds, %d kills, %d clean stop
  published %d, acknowledged %d; delivered to exactly one consumer once: %d
  lost %d; delivered more than once: %d messages first delivered at QoS 1 (%d extra deliveries, allowed), %d first at QoS 2
  deliveries per consumer: %s`,
		rounds, r.kills, r.stops, published, acked, once, lost, dupQoS1, dupQoS1Extra, dupQoS2, strings.Join(shares, ", "))
	if drainErr != nil {
		t.Errorf("drain: %v", drainErr)
	}
	if lost > 0 {
		t.Errorf("%d acknowledged messages reached no consumer, e.g. %v", lost, lostEx)
	}
	if dupQoS2 > 0 {
		t.Errorf("%d messages first delivered at QoS 2 were delivered again, e.g. %v", dupQoS2, dupQoS2Ex)
	}
	if busy < len(r.subs)/2 {
		t.Errorf("only %d of %d consumers got messages: %s", busy, len(r.subs), strings.Join(shares, ", "))
	}
	for _, o := range odd {
		t.Error(o)
	}
}

// TestCrash_Pubsub: readers of a pubsub rule, two with clean sessions
// (their read positions are kept per client ID) and two persistent,
// through kills and a clean stop. Each must get every message
// acknowledged to its publisher, first deliveries in order. A clean
// session's position is saved at most every 100 ms as it acknowledges
// (and when its connection goes), so after a kill it gets again what it
// acknowledged in the last 100 ms or so, at QoS 1 (its subscription's);
// a persistent one saves it with its in-flight table, so QoS 2 stays
// exactly once, and only QoS 1 messages acknowledged since its last
// in-flight write come again.
func TestCrash_Pubsub(t *testing.T) {
	r := newOfflineRun(t, `
[[offline]]
topic = "feed/#"
mode = "pubsub"
`)
	r.pubs = []*client{
		newPublisher("f1", 1, "", 16, time.Millisecond),
		newPublisher("f2", 2, "", 16, 2*time.Millisecond),
	}
	r.subs = []*client{
		newCleanSubscriber("clean5", packet.V5, "feed/#", 1, 10),
		newCleanSubscriber("clean3", packet.V311, "feed/+/+", 1, 0),
		newSubscriber("durable5", packet.V5, "feed/#", 2, 20),
		newSubscriber("durable3", packet.V311, "feed/#", 2, 0),
	}
	rounds := roundsFor(t)
	r.rounds(rounds, func(pub string, round int) string { return fmt.Sprintf("feed/%s/%d", pub, round%20) })
	drainErr := waitDelivered(r.pubs, r.subs)
	r.finish()
	var per []string
	for _, s := range r.subs {
		n := 0
		for _, g := range s.got {
			n += len(g)
		}
		per = append(per, fmt.Sprintf("%s %d", s.id, n))
	}
	t.Logf("deliveries per subscriber: %s", strings.Join(per, ", "))
	rep := check(r.pubs, r.subs)
	rep.rounds, rep.kills = rounds, r.kills
	t.Logf("pubsub rule, %d kills and %d clean stop; subscribers: 2 with clean sessions, 2 persistent\n%s", r.kills, r.stops, rep.summary(r.seed))
	if drainErr != nil {
		t.Errorf("drain: %v", drainErr)
	}
	for _, f := range rep.failures {
		t.Error(f)
	}
}
