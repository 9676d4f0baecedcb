package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// pollEvery is how often a run checks its counters for the end condition.
const pollEvery = 5 * time.Millisecond

// subscribers drive the receiving side of sub and pubsub.
type subscribers struct {
	qos     byte
	filters []string // filter of client i, %i expanded
	gate    *window  // released once per message when set
	states  []*subState
	clients []*client

	lostConns atomic.Int64
	mu        sync.Mutex // guards firstErr
	firstErr  error
}

// subState is what one subscriber records. hist is written only by the
// client's paho router goroutine and read after disconnect, which waits
// for that goroutine; the counters are read while the run goes on.
type subState struct {
	count atomic.Int64
	first atomic.Int64 // unix nanoseconds of the first message, 0 before
	last  atomic.Int64 // unix nanoseconds of the latest message
	hist  histogram
}

func newSubscribers(qos byte, pattern string, n int) *subscribers {
	s := &subscribers{qos: qos, filters: make([]string, n), states: make([]*subState, n)}
	for i := range n {
		s.filters[i] = expand(pattern, i)
		s.states[i] = &subState{}
	}
	return s
}

func (s *subscribers) onPublish(st *subState) func(*paho.Publish) {
	return func(p *paho.Publish) {
		now := time.Now().UnixNano()
		if len(p.Payload) >= 8 {
			st.hist.record(time.Duration(now - int64(binary.BigEndian.Uint64(p.Payload))))
		}
		if st.first.Load() == 0 {
			st.first.Store(now)
		}
		st.last.Store(now)
		st.count.Add(1)
		if s.gate != nil {
			s.gate.release(1)
		}
	}
}

// connect connects and subscribes every subscriber, returning once all
// SUBACKs are in (or the first failure).
func (s *subscribers) connect(ctx context.Context, cm *common, receiveMax uint16) error {
	cr := connectAll(ctx, len(s.states), 32, 0, func(i int) clientOptions {
		co := cm.clientOptions("sub", i)
		co.ReceiveMaximum = receiveMax
		co.OnPublish = s.onPublish(s.states[i])
		co.OnLost = func(err error) {
			s.lostConns.Add(1)
			s.fail(fmt.Errorf("subscriber %d lost its connection: %w", i, err))
		}
		return co
	})
	s.clients = cr.clients
	if cr.failed > 0 {
		return fmt.Errorf("%d of %d subscribers could not connect: %w", cr.failed, len(s.states), cr.firstErr)
	}
	errc := make(chan error, len(s.clients))
	sem := make(chan struct{}, 32)
	for i, c := range s.clients {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errc <- subscribe(ctx, c, s.filters[i], s.qos)
		}()
	}
	var errs []error
	for range s.clients {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d subscriptions failed: %w", len(errs), len(s.clients), errs[0])
	}
	return nil
}

func subscribe(ctx context.Context, c *client, filter string, qos byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sa, err := c.pc.Subscribe(ctx, &paho.Subscribe{
		Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}},
	})
	if err != nil {
		return fmt.Errorf("subscribe %q: %w", filter, err)
	}
	if len(sa.Reasons) != 1 || sa.Reasons[0] >= 0x80 {
		return fmt.Errorf("subscribe %q: refused, SUBACK reason codes %v", filter, sa.Reasons)
	}
	return nil
}

func (s *subscribers) fail(err error) {
	s.mu.Lock()
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.mu.Unlock()
}

func (s *subscribers) firstError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstErr == nil {
		return ""
	}
	return s.firstErr.Error()
}

// received returns the messages received so far by all subscribers.
func (s *subscribers) received() int64 {
	var n int64
	for _, st := range s.states {
		n += st.count.Load()
	}
	return n
}

// span returns the time from the first message any subscriber received to
// the last.
func (s *subscribers) span() time.Duration {
	var first, last int64
	for _, st := range s.states {
		f, l := st.first.Load(), st.last.Load()
		if f != 0 && (first == 0 || f < first) {
			first = f
		}
		last = max(last, l)
	}
	return time.Duration(last - first)
}

// disconnect disconnects every subscriber and returns their merged
// end-to-end latencies.
func (s *subscribers) disconnect() *histogram {
	disconnectAll(s.clients, 64)
	s.clients = nil
	var h histogram
	for _, st := range s.states {
		h.merge(&st.hist)
	}
	return &h
}

// waitProgress polls until done reports true (returning nil), ctx ends
// (returning its error), or progress has not changed for idle (returning
// errIdle).
func waitProgress(ctx context.Context, idle time.Duration, done func() bool, progress func() int64) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	last, lastAt := progress(), time.Now()
	for {
		if done() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-t.C:
			if p := progress(); p != last {
				last, lastAt = p, now
			} else if idle > 0 && now.Sub(lastAt) >= idle {
				return errIdle
			}
		}
	}
}

func runSub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	var (
		cm       common
		clients  int
		qos      int
		filter   string
		expected int64
		duration time.Duration
		idle     time.Duration
		rm       uint
	)
	cm.register(fs)
	fs.IntVar(&clients, "c", 1, "number of subscribing `clients`")
	fs.IntVar(&qos, "q", 0, "subscription QoS `level` 0, 1 or 2")
	fs.StringVar(&filter, "t", "bench/#", "topic `filter`; %i is the client index")
	fs.Int64Var(&expected, "n", 0, "stop once this many messages have arrived over all subscribers (0: no count)")
	fs.DurationVar(&duration, "d", 0, "stop after this `duration` (0: no limit)")
	fs.DurationVar(&idle, "idle", 10*time.Second, "stop when no message arrived for this `duration` (0: never)")
	fs.UintVar(&rm, "rm", 1000, "Receive Maximum: QoS 1/2 messages the broker may have unacknowledged per subscriber")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case clients < 1:
		return usageErr(stderr, "sub", "-c must be at least 1")
	case qos < 0 || qos > 2:
		return usageErr(stderr, "sub", "-q must be 0, 1 or 2")
	case rm < 1 || rm > 65535:
		return usageErr(stderr, "sub", "-rm must be 1 to 65535")
	case expected < 0 || duration < 0 || idle < 0:
		return usageErr(stderr, "sub", "-n, -d and -idle must not be negative")
	case expected == 0 && duration == 0 && idle == 0:
		return usageErr(stderr, "sub", "bound the run with -n, -d or -idle")
	}

	stopProf, err := cm.startProfile()
	if err != nil {
		return err
	}
	defer stopProf()
	s := newSubscribers(byte(qos), filter, clients)
	defer func() { disconnectAll(s.clients, 64) }()
	if err := s.connect(ctx, &cm, uint16(rm)); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "gatemq bench sub: %d subscribed to %s, waiting\n", clients, filter)
	runCtx, cancel := withDuration(ctx, duration)
	defer cancel()
	cpu, disk := startCPU(cm.brokerPID), startIO(cm.brokerPID)
	err = waitProgress(runCtx, idle, func() bool {
		return expected > 0 && s.received() >= expected
	}, s.received)
	res := &SubResult{
		Header:   cm.header("sub"),
		QoS:      qos,
		Clients:  clients,
		Filter:   filter,
		Expected: expected,
	}
	res.BrokerCPU.set(cpu, s.received())
	res.BrokerIO.set(disk, s.received())
	hist := s.disconnect()
	res.Received = s.received()
	span := s.span()
	res.Seconds = seconds(span)
	res.Rate = rate(max(res.Received-1, 0), span)
	res.Latency = hist.summary()
	switch {
	case err == nil:
		res.Stopped = "count"
	case errors.Is(err, errIdle):
		res.Stopped = "idle"
	default:
		res.Stopped = stopReason(ctx, runCtx, 0)
	}
	if err := emit(stdout, cm.json, res); err != nil {
		return err
	}
	if expected > 0 && res.Received < expected {
		return errRunFailed
	}
	return nil
}
