package bench

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// pubOptions configure a set of publishers.
type pubOptions struct {
	QoS   byte
	Size  int
	Topic string // %i is the client index
	// Interval between messages of one client, or Rate msgs/s over all
	// clients; both zero means as fast as possible.
	Interval time.Duration
	Rate     float64
	// Count messages per client; 0 means until the context ends.
	Count int
	// Inflight is how many QoS 1 or 2 publishes each client has
	// outstanding (each is a goroutine blocked in paho's Publish); the
	// broker's Receive Maximum caps it further.
	Inflight int
	Retain   bool
}

// publishers drive the publishing side of pub and pubsub. Counters are
// atomic and may be read while run goes on.
type publishers struct {
	o       pubOptions
	clients []*client
	raw     []*rawPub // instead of clients: pub at QoS 0 and 1 (rawpub.go)
	// gate, when set, bounds deliveries in flight; fan[i] is how many
	// deliveries a message from client i makes.
	gate *window
	fan  []int

	sent     atomic.Int64
	expected atomic.Int64 // sum of fan over messages sent
	errs     atomic.Int64

	mu       sync.Mutex // guards firstErr
	firstErr error
	acks     histogram // complete once run returns
}

// run publishes until every client has sent Count messages or ctx ends,
// and returns the time from the start to the last acknowledgement (QoS 1,
// 2) or until everything written has reached the socket (QoS 0). A publish
// already in flight when ctx ends is still waited for, up to paho's
// PacketTimeout.
func (p *publishers) run(ctx context.Context) time.Duration {
	period := time.Duration(0)
	switch {
	case p.o.Interval > 0:
		period = p.o.Interval
	case p.o.Rate > 0:
		period = time.Duration(float64(len(p.clients)+len(p.raw)) / p.o.Rate * float64(time.Second))
	}
	if p.raw != nil {
		return p.runRaw(ctx, period)
	}
	workers := 1
	if p.o.QoS > 0 {
		workers = max(p.o.Inflight, 1)
	}
	start := time.Now()
	var wg sync.WaitGroup
	acks := make([]lockedHistogram, len(p.clients))
	for i, c := range p.clients {
		next := new(atomic.Int64)
		// Spread the clients' schedules over one period.
		first := start.Add(period * time.Duration(i) / time.Duration(len(p.clients)))
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.worker(ctx, i, c, next, first, period, &acks[i])
			}()
		}
	}
	wg.Wait()
	for i := range acks {
		p.acks.merge(&acks[i].h)
	}
	if p.o.QoS == 0 {
		for _, c := range p.clients {
			c.nc.flush(10 * time.Second)
		}
	}
	return time.Since(start)
}

// connectPaho connects n paho publishers for p; the returned func, to be
// called even on an error, disconnects those that connected.
func (p *publishers) connectPaho(ctx context.Context, cm *common, n int) (disconnect func(), err error) {
	cr := connectAll(ctx, n, 32, 0, func(i int) clientOptions {
		co := cm.clientOptions("pub", i)
		co.OnLost = func(err error) { p.fail(fmt.Errorf("publisher %d lost its connection: %w", i, err)) }
		return co
	})
	disconnect = func() { disconnectAll(cr.clients, 64) }
	if cr.failed > 0 {
		return disconnect, fmt.Errorf("%d of %d publishers could not connect: %w", cr.failed, n, cr.firstErr)
	}
	p.clients = cr.clients
	return disconnect, nil
}

// rawAck counts what a rawPub reports: a message acknowledged (QoS 1) or
// written (QoS 0), or a failed PUBACK.
func (p *publishers) rawAck(failed error) {
	if failed != nil {
		p.fail(failed)
		return
	}
	p.sent.Add(1)
}

// runRaw is run for rawPub clients: one goroutine each, its window of
// publishes in flight kept by the client itself.
func (p *publishers) runRaw(ctx context.Context, period time.Duration) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for i, r := range p.raw {
		first := start.Add(period * time.Duration(i) / time.Duration(len(p.raw)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.run(ctx, p.o.QoS, expand(p.o.Topic, i), p.o.Size, p.o.Retain, p.o.Count, first, period); err != nil {
				p.fail(fmt.Errorf("publisher %d: %w", i, err))
			}
		}()
	}
	wg.Wait()
	for _, r := range p.raw {
		p.acks.merge(&r.acks)
	}
	return time.Since(start)
}

// worker publishes the messages of client i, claiming their numbers from
// next; message k is due at first + k*period.
func (p *publishers) worker(ctx context.Context, i int, c *client, next *atomic.Int64, first time.Time, period time.Duration, acks *lockedHistogram) {
	payload := make([]byte, p.o.Size)
	for j := 8; j < len(payload); j++ {
		payload[j] = 'a' + byte(j%26)
	}
	msg := &paho.Publish{QoS: p.o.QoS, Topic: expand(p.o.Topic, i), Payload: payload, Retain: p.o.Retain}
	fan := 0
	if p.fan != nil {
		fan = p.fan[i]
	}
	// A publish in flight finishes even if the run's context ends, so
	// that sent counts what the broker acknowledged; paho bounds each
	// wait for an acknowledgement by its PacketTimeout.
	pctx := context.WithoutCancel(ctx)
	for ctx.Err() == nil && !c.isClosed() {
		k := next.Add(1) - 1
		if p.o.Count > 0 && k >= int64(p.o.Count) {
			return
		}
		if period > 0 && !sleepUntil(ctx, first.Add(period*time.Duration(k))) {
			return
		}
		if p.gate != nil && p.gate.acquire(ctx, fan) != nil {
			return
		}
		t0 := time.Now()
		if len(payload) >= 8 {
			binary.BigEndian.PutUint64(payload, uint64(t0.UnixNano()))
		}
		_, err := c.pc.Publish(pctx, msg)
		if err != nil {
			if p.gate != nil {
				p.gate.release(fan)
			}
			p.fail(fmt.Errorf("publish to %q: %w", msg.Topic, err))
			continue
		}
		if p.o.QoS > 0 {
			acks.record(time.Since(t0))
		}
		p.sent.Add(1)
		p.expected.Add(int64(fan))
	}
}

func (p *publishers) fail(err error) {
	p.errs.Add(1)
	p.mu.Lock()
	if p.firstErr == nil {
		p.firstErr = err
	}
	p.mu.Unlock()
}

func (p *publishers) firstError() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.firstErr == nil {
		return ""
	}
	return p.firstErr.Error()
}

// pubFlags registers the publishing flags shared by pub and pubsub.
func pubFlags(fs *flag.FlagSet, o *pubOptions, qos *int) {
	fs.IntVar(qos, "q", 0, "QoS `level` 0, 1 or 2")
	fs.IntVar(&o.Size, "s", 64, "payload size in `bytes` (at least 8 for latency: the first 8 carry the send time)")
	fs.DurationVar(&o.Interval, "I", 0, "`interval` between the messages of one client (0: as fast as possible)")
	fs.Float64Var(&o.Rate, "r", 0, "total `rate` in msgs/s over all publishers (0: as fast as possible)")
	fs.IntVar(&o.Count, "n", 10000, "messages per publisher (0: until -d)")
	fs.IntVar(&o.Inflight, "inflight", 100, "QoS 1/2 publishes each publisher keeps in flight")
	fs.BoolVar(&o.Retain, "retain", false, "set the retain flag")
}

func checkPubOptions(stderr io.Writer, cmd string, o *pubOptions, qos int, d time.Duration) error {
	switch {
	case qos < 0 || qos > 2:
		return usageErr(stderr, cmd, "-q must be 0, 1 or 2")
	case o.Size < 0 || o.Size > 256<<20:
		return usageErr(stderr, cmd, "-s must be between 0 and 256 MiB")
	case o.Interval < 0 || o.Rate < 0:
		return usageErr(stderr, cmd, "-I and -r must not be negative")
	case o.Interval > 0 && o.Rate > 0:
		return usageErr(stderr, cmd, "give -I or -r, not both")
	case o.Count < 0 || d < 0:
		return usageErr(stderr, cmd, "-n and -d must not be negative")
	case o.Count == 0 && d == 0:
		return usageErr(stderr, cmd, "bound the run with -n or -d")
	case o.Topic == "":
		return usageErr(stderr, cmd, "-t must not be empty")
	}
	o.QoS = byte(qos)
	return nil
}

func runPub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	var (
		cm       common
		o        pubOptions
		qos      int
		clients  int
		duration time.Duration
		usePaho  bool
	)
	cm.register(fs)
	pubFlags(fs, &o, &qos)
	fs.IntVar(&clients, "c", 1, "number of publishing `clients`")
	fs.BoolVar(&usePaho, "paho", false, "drive QoS 0 and 1 publishers with paho.golang, as QoS 2 and pubsub are, not with the tool's own codec")
	fs.StringVar(&o.Topic, "t", "bench/%i", "`topic`; %i is the client index")
	fs.DurationVar(&duration, "d", 0, "stop sending after this `duration` (0: when -n are sent)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if clients < 1 {
		return usageErr(stderr, "pub", "-c must be at least 1")
	}
	if err := checkPubOptions(stderr, "pub", &o, qos, duration); err != nil {
		return err
	}

	stopProf, err := cm.startProfile()
	if err != nil {
		return err
	}
	defer stopProf()
	p := &publishers{o: o}
	if qos < 2 && !usePaho {
		cr := connectEach(ctx, clients, 32, 0, func(ctx context.Context, i int) (*rawPub, error) {
			return dialRaw(ctx, cm.clientOptions("pub", i), o.Inflight, p.rawAck)
		})
		defer disconnectAll(cr.clients, 64)
		if cr.failed > 0 {
			return fmt.Errorf("%d of %d publishers could not connect: %w", cr.failed, clients, cr.firstErr)
		}
		p.raw = cr.clients
	} else {
		stop, err := p.connectPaho(ctx, &cm, clients)
		defer stop()
		if err != nil {
			return err
		}
	}
	runCtx, cancel := withDuration(ctx, duration)
	defer cancel()
	cpu, disk := startCPU(cm.brokerPID), startIO(cm.brokerPID)
	took := p.run(runCtx)
	res := &PubResult{
		Header:  cm.header("pub"),
		QoS:     qos,
		Clients: clients,
		Size:    o.Size,
		Topic:   o.Topic,
		Sent:    p.sent.Load(),
		Errors:  p.errs.Load(),
		Seconds: seconds(took),
		Rate:    rate(p.sent.Load(), took),
	}
	res.BrokerCPU.set(cpu, res.Sent)
	res.BrokerIO.set(disk, res.Sent)
	res.FirstErr = p.firstError()
	res.Stopped = stopReason(ctx, runCtx, res.Errors)
	if qos > 0 {
		res.AckLatency = p.acks.summary()
	}
	if err := emit(stdout, cm.json, res); err != nil {
		return err
	}
	if res.Errors > 0 {
		return errRunFailed
	}
	return nil
}

// withDuration returns ctx bounded by d, or just cancellable when d is 0.
func withDuration(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// stopReason says why a run bounded by runCtx (derived from the command's
// ctx) ended.
func stopReason(ctx, runCtx context.Context, errs int64) string {
	switch {
	case ctx.Err() != nil:
		return "interrupted"
	case runCtx.Err() != nil:
		return "duration"
	case errs > 0:
		return "error"
	}
	return "count"
}
