package crash

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// The broker's configuration for the test: no cap on connections a
// second (every round reconnects everyone from one address).
const brokerConfig = `[log]
level = "info"

[[listener]]
address = "127.0.0.1:1883"
max_connection_rate = 0
`

// crashSettings are read from the environment (see the package doc).
type crashSettings struct {
	rounds int
	seed   uint64
	keep   bool
}

func settings(t *testing.T) crashSettings {
	s := crashSettings{rounds: 20, seed: uint64(time.Now().UnixNano())}
	if testing.Short() {
		s.rounds = 3
	}
	if v := os.Getenv("CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CRASH_ROUNDS=%q: want a positive number", v)
		}
		s.rounds = n
	}
	if v := os.Getenv("CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CRASH_SEED=%q: want a number", v)
		}
		s.seed = n
	}
	s.keep = os.Getenv("CRASH_KEEP") == "1"
	return s
}

// TestCrash_KillNine runs the broker binary through rounds of traffic
// ended by SIGKILL, then checks what the durable subscribers received
// against what the publishers had acknowledged, and the store.
func TestCrash_KillNine(t *testing.T) {
	set := settings(t)
	t.Logf("crash test: %d rounds, seed %d (CRASH_SEED=%d replays the schedule)", set.rounds, set.seed, set.seed)
	rng := rand.New(rand.NewPCG(set.seed, set.seed^0x9e3779b97f4a7c15))

	dir, err := os.MkdirTemp("", "gatemq-crash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || set.keep {
			t.Logf("kept %s (broker log: %s)", dir, filepath.Join(dir, "broker.log"))
			return
		}
		os.RemoveAll(dir)
	})
	cfg := filepath.Join(dir, "gatemq.toml")
	if err := os.WriteFile(cfg, []byte(brokerConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &brokerProc{bin: buildBroker(t), config: cfg, dataDir: filepath.Join(dir, "data"),
		addr: freeAddr(t), logPath: filepath.Join(dir, "broker.log")}
	t.Cleanup(func() { b.kill() })

	pubs := []*client{
		newPublisher("p1a", 1, "", 16, time.Millisecond),
		newPublisher("p1b", 1, "", 4, 2*time.Millisecond),
		newPublisher("p2a", 2, "", 16, time.Millisecond),
		newPublisher("p2b", 2, "", 4, 2*time.Millisecond),
	}
	subs := []*client{
		newSubscriber("s2a", packet.V5, "crash/#", 2, 10),
		newSubscriber("s2b", packet.V5, "crash/#", 2, 100),
		newSubscriber("s1", packet.V5, "crash/#", 1, 20),
		newSubscriber("s3", packet.V311, "crash/#", 2, 0),
	}
	subs[1].resub, subs[3].resub = true, true
	all := append(append([]*client{}, subs...), pubs...)

	var kills, early, awaySubs int
	for round := 1; round <= set.rounds; round++ {
		// A new topic level value each round, so that streams are
		// created while subscribers are away (after 16 values the
		// store shares one stream, "crash/pub/+").
		for _, p := range pubs {
			p.setTopic(fmt.Sprintf("crash/%s/%d", p.id, round%24))
		}
		if err := b.start(); err != nil {
			t.Fatal(err)
		}
		if round > 1 && rng.IntN(8) == 0 {
			// Killed while starting: restoring, or just listening.
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
			if err := b.kill(); err != nil {
				t.Fatal(err)
			}
			early++
			continue
		}
		if err := b.waitReady(10 * time.Second); err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, logTail(b.logPath, 30))
		}
		away := -1
		if round > 1 && rng.IntN(3) == 0 {
			away = rng.IntN(len(subs))
			awaySubs++
		}
		delay := time.Duration(rng.Int64N(int64(1200 * time.Millisecond)))

		killed := make(chan struct{})
		var killing atomic.Bool // set before the signal goes
		startKiller := func() {
			time.AfterFunc(delay, func() {
				killing.Store(true)
				b.kill()
				close(killed)
			})
		}
		if round > 1 {
			startKiller() // the kill may land while clients connect
		}
		var connErrs []string
		connectAll := func(cs []*client) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for _, c := range cs {
				wg.Go(func() {
					if err := c.connect(b.addr); err != nil {
						mu.Lock()
						connErrs = append(connErrs, err.Error())
						mu.Unlock()
					}
				})
			}
			wg.Wait()
		}
		var present []*client
		for i, s := range subs {
			if i != away {
				present = append(present, s)
			}
		}
		connectAll(present)
		if round == 1 {
			if len(connErrs) > 0 {
				t.Fatalf("round 1: subscribers could not subscribe: %v\n%s", connErrs, logTail(b.logPath, 30))
			}
			startKiller()
		}
		connectAll(pubs)
		if len(connErrs) > 0 && !killing.Load() {
			t.Fatalf("round %d: connect with the broker up: %v\n%s", round, connErrs, logTail(b.logPath, 30))
		}
		var runs sync.WaitGroup
		stop := make(chan struct{})
		for _, p := range pubs {
			runs.Go(func() { p.run(stop) })
		}
		select {
		case <-killed:
		case <-time.After(delay + 15*time.Second):
			t.Fatalf("round %d: the broker was not killed", round)
		}
		kills++
		close(stop)
		for _, c := range all {
			if err := c.waitDown(5 * time.Second); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		runs.Wait()
		if set.rounds >= 50 && round%50 == 0 {
			t.Logf("round %d of %d: %d messages sent so far", round, set.rounds, sentTotal(pubs))
		}
	}

	// Last start: everyone back, publishers finish what is in flight,
	// subscribers drain, then a clean stop.
	start := time.Now()
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	if err := b.waitReady(30 * time.Second); err != nil {
		t.Fatalf("final start: %v\n%s", err, logTail(b.logPath, 30))
	}
	t.Logf("final restart ready in %s", time.Since(start).Round(time.Millisecond))
	for _, c := range all {
		if err := c.connect(b.addr); err != nil {
			t.Fatalf("final connect: %v\n%s", err, logTail(b.logPath, 30))
		}
	}
	waitAcked(t, pubs)
	drainErr := waitDelivered(pubs, subs)
	for _, c := range all {
		c.disconnect()
	}
	if err := b.stop(15 * time.Second); err != nil {
		t.Errorf("clean stop: %v", err)
	}

	rep := check(pubs, subs)
	rep.rounds, rep.kills, rep.early, rep.away = set.rounds, kills, early, awaySubs
	t.Log(rep.summary(set.seed))
	if drainErr != nil {
		t.Errorf("drain: %v", drainErr)
	}
	for _, f := range rep.failures {
		t.Error(f)
	}
	b.checkAfter(t)
	if t.Failed() {
		t.Logf("broker log tail:\n%s", logTail(b.logPath, 40))
	}
}

func sentTotal(pubs []*client) int {
	n := 0
	for _, p := range pubs {
		p.mu.Lock()
		n += p.sent
		p.mu.Unlock()
	}
	return n
}

// waitAcked waits until every publisher has its messages acknowledged.
func waitAcked(t *testing.T, pubs []*client) {
	t.Helper()
	testkit.WaitFor(t, 30*time.Second, func() error {
		for _, p := range pubs {
			if n := p.inflightLen(); n > 0 {
				return fmt.Errorf("%s has %d messages unacknowledged", p.id, n)
			}
		}
		return nil
	})
}

// waitDelivered waits until every subscriber has every message
// acknowledged to pubs, or until no delivery has come for 10 s (an
// error). The publishers must be done (waitAcked): what is acknowledged
// no longer changes, and each poll looks only at what is still missing.
func waitDelivered(pubs, subs []*client) error {
	pending := make([]map[string][]int, len(subs))
	for i, s := range subs {
		pending[i] = s.missing(pubs)
	}
	return waitProgress(10*time.Second, func() (missing, got int) {
		for i, s := range subs {
			m, g := s.stillMissing(pending[i])
			missing, got = missing+m, got+g
		}
		return missing, got
	})
}

// missing returns, per publisher, the acknowledged messages of pubs s
// has not received.
func (s *client) missing(pubs []*client) map[string][]int {
	out := make(map[string][]int)
	for _, p := range pubs {
		p.mu.Lock()
		var qs []int
		for q := 1; q <= p.sent; q++ {
			if p.acked[q] {
				qs = append(qs, q)
			}
		}
		p.mu.Unlock()
		out[p.id] = qs
	}
	s.stillMissing(out)
	return out
}

// stillMissing drops from pending what s has received since, and
// returns how many are left and how many deliveries s has had.
func (s *client) stillMissing(pending map[string][]int) (missing, got int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid, qs := range pending {
		seen := s.seen[pid]
		left := qs[:0]
		for _, q := range qs {
			if q >= len(seen) || !seen[q] {
				left = append(left, q)
			}
		}
		pending[pid] = left
		missing += len(left)
		got += len(s.got[pid])
	}
	return missing, got
}

// waitProgress polls f until it reports nothing missing, or until the
// count of deliveries has not moved for idle.
func waitProgress(idle time.Duration, f func() (missing, got int)) error {
	last, lastAt := -1, time.Now()
	for {
		missing, got := f()
		if missing == 0 {
			return nil
		}
		if got != last {
			last, lastAt = got, time.Now()
		} else if time.Since(lastAt) > idle {
			return fmt.Errorf("%d acknowledged deliveries still missing, nothing received for %s", missing, idle)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// report is the outcome of check.
type report struct {
	rounds, kills, early, away int
	subs                       int

	published, acked, unacked, dropped int
	perQoS                             [3]int // messages published at QoS 1, 2
	delivered                          int
	lost, invented, disorder           int
	dupQoS1, dupQoS2                   int
	dupQoS2Resent                      int // of dupQoS2: the publisher had sent the message again
	unackedDelivered                   int
	redeliveries                       int // QoS 2 resends the subscribers recognised
	wrongQoS                           int
	failures                           []string
}

// check compares what every subscriber received with what was published.
func check(pubs []*client, subs []*client) *report {
	r := &report{subs: len(subs)}
	byID := map[string]*client{}
	for _, p := range pubs {
		byID[p.id] = p
		r.published += p.sent
		r.perQoS[p.qos] += p.sent
		for q := 1; q <= p.sent; q++ {
			if p.acked[q] {
				r.acked++
			} else {
				r.unacked++
			}
		}
		r.dropped += len(p.dropped)
		for _, n := range p.nacked {
			r.failures = append(r.failures, "negative acknowledgement: "+n)
		}
		for _, g := range p.sessionGap {
			r.failures = append(r.failures, fmt.Sprintf("publisher %s: %s", p.id, g))
		}
		for _, o := range p.odd {
			r.failures = append(r.failures, fmt.Sprintf("publisher %s: %s", p.id, o))
		}
	}
	const show = 5 // examples per kind and subscriber
	for _, s := range subs {
		r.redeliveries += s.redeliv
		for _, g := range s.sessionGap {
			r.failures = append(r.failures, fmt.Sprintf("subscriber %s: %s", s.id, g))
		}
		for _, o := range s.odd {
			r.invented++
			r.failures = append(r.failures, fmt.Sprintf("subscriber %s: %s", s.id, o))
		}
		for pid, seqs := range s.got {
			if byID[pid] == nil {
				r.invented += len(seqs)
				r.failures = append(r.failures, fmt.Sprintf("subscriber %s: %d messages from unknown publisher %q", s.id, len(seqs), pid))
			}
		}
		var lost, dups, dupsResent, disorder, invented []string
		for _, p := range pubs {
			seqs, qoss := s.got[p.id], s.gotQoS[p.id]
			r.delivered += len(seqs)
			want := min(p.qos, s.subQoS)
			count := make([]int, p.sent+1)
			high := 0 // highest sequence number delivered a first time
			for i, q := range seqs {
				if q > p.sent {
					r.invented++
					invented = append(invented, fmt.Sprintf("%s:%d", p.id, q))
					continue
				}
				if qoss[i] != want {
					r.wrongQoS++
				}
				count[q]++
				if count[q] == 1 {
					if q < high {
						r.disorder++
						if len(disorder) < show {
							disorder = append(disorder, fmt.Sprintf("%s:%d after %s:%d", p.id, q, p.id, high))
						}
					}
					high = max(high, q)
				}
			}
			for q := 1; q <= p.sent; q++ {
				switch {
				case count[q] == 0 && p.acked[q]:
					r.lost++
					if len(lost) < show {
						lost = append(lost, fmt.Sprintf("%s:%d (resent %v)", p.id, q, p.resent[q]))
					}
				case count[q] > 0 && !p.acked[q]:
					r.unackedDelivered++
				}
				if count[q] > 1 {
					if want == 2 {
						r.dupQoS2++
						ex := fmt.Sprintf("%s:%d x%d", p.id, q, count[q])
						switch {
						case p.resent[q]:
							r.dupQoS2Resent++
							if len(dupsResent) < show {
								dupsResent = append(dupsResent, ex)
							}
						case len(dups) < show:
							dups = append(dups, ex)
						}
					} else {
						r.dupQoS1 += count[q] - 1
					}
				}
			}
		}
		if len(lost) > 0 {
			r.failures = append(r.failures, fmt.Sprintf("subscriber %s lost acknowledged messages, e.g. %s", s.id, strings.Join(lost, ", ")))
		}
		if len(dupsResent) > 0 {
			r.failures = append(r.failures, fmt.Sprintf("subscriber %s got QoS 2 messages twice that their publisher had resent "+
				"after a restart (the broker had stored the first PUBLISH but no longer knew its packet identifier), e.g. %s",
				s.id, strings.Join(dupsResent, ", ")))
		}
		if len(dups) > 0 {
			r.failures = append(r.failures, fmt.Sprintf("subscriber %s got QoS 2 messages more than once that were published once "+
				"(the broker sent a completed delivery again as a new one), e.g. %s", s.id, strings.Join(dups, ", ")))
		}
		if len(disorder) > 0 {
			r.failures = append(r.failures, fmt.Sprintf("subscriber %s got first deliveries out of order, e.g. %s", s.id, strings.Join(disorder, ", ")))
		}
		if len(invented) > 0 {
			r.failures = append(r.failures, fmt.Sprintf("subscriber %s got messages never published, e.g. %s", s.id, strings.Join(invented[:min(show, len(invented))], ", ")))
		}
	}
	if r.wrongQoS > 0 {
		r.failures = append(r.failures, fmt.Sprintf("%d deliveries at another QoS than min(publish, subscription)", r.wrongQoS))
	}
	return r
}

func (r *report) summary(seed uint64) string {
	return fmt.Sprintf(`crash test summary (seed %d)
  rounds %d: %d kills in traffic, %d during start-up, %d rounds with a subscriber away
  published %d (QoS 1 %d, QoS 2 %d): acknowledged %d, never acknowledged %d (given up on a lost session %d)
  deliveries %d to %d durable subscribers; unacknowledged messages delivered %d
  lost %d, invented %d, out of order %d
  duplicates: QoS 1 %d (allowed), QoS 2 %d (of which the publisher had resent %d)
  QoS 2 resends recognised by the subscribers' packet identifiers: %d`,
		seed, r.rounds, r.kills, r.early, r.away,
		r.published, r.perQoS[1], r.perQoS[2], r.acked, r.unacked, r.dropped,
		r.delivered, r.subs, r.unackedDelivered,
		r.lost, r.invented, r.disorder,
		r.dupQoS1, r.dupQoS2, r.dupQoS2Resent, r.redeliveries)
}

// logProblems returns the lines of the broker's log that report a panic
// or (with CRASH_RACE=1) a data race.
func logProblems(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var bad []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "panic:") || strings.Contains(l, "WARNING: DATA RACE") ||
			strings.HasPrefix(l, "fatal error:") {
			bad = append(bad, l)
		}
	}
	return bad
}

// logTail returns the last n lines of the broker's log.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
