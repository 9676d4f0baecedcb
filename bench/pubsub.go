package bench

import (
	"context"
	"errors"
	"flag"
	"io"
	"time"
)

func runPubSub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pubsub", flag.ContinueOnError)
	var (
		cm       common
		o        pubOptions
		qos      int
		pubs     int
		subs     int
		filter   string
		duration time.Duration
		idle     time.Duration
		win      int64
		rm       uint
	)
	cm.register(fs)
	pubFlags(fs, &o, &qos)
	fs.IntVar(&pubs, "pubs", 1, "number of publishing clients")
	fs.IntVar(&subs, "subs", 1, "number of subscribing clients")
	fs.StringVar(&o.Topic, "t", "bench/%i", "`topic` to publish to; %i is the publisher index")
	fs.StringVar(&filter, "f", "bench/%i", "`filter` to subscribe to; %i is the subscriber index")
	fs.DurationVar(&duration, "d", 0, "stop sending after this `duration` (0: when -n are sent)")
	fs.DurationVar(&idle, "idle", 10*time.Second, "give up when nothing was sent or received for this `duration`")
	fs.Int64Var(&win, "window", 10000, "most deliveries in flight between publishers and subscribers (0: no limit)")
	fs.UintVar(&rm, "rm", 1000, "Receive Maximum of the subscribers: QoS 1/2 messages the broker may have unacknowledged per subscriber")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case pubs < 1 || subs < 1:
		return usageErr(stderr, "pubsub", "-pubs and -subs must be at least 1")
	case rm < 1 || rm > 65535:
		return usageErr(stderr, "pubsub", "-rm must be 1 to 65535")
	case idle <= 0:
		return usageErr(stderr, "pubsub", "-idle must be positive")
	case win < 0:
		return usageErr(stderr, "pubsub", "-window must not be negative")
	}
	if err := checkPubOptions(stderr, "pubsub", &o, qos, duration); err != nil {
		return err
	}

	stopProf, err := cm.startProfile()
	if err != nil {
		return err
	}
	defer stopProf()
	s := newSubscribers(o.QoS, filter, subs)
	p := &publishers{o: o, fan: make([]int, pubs)}
	for i := range pubs {
		p.fan[i] = fanout(s.filters, expand(o.Topic, i))
	}
	if win > 0 {
		g := newWindow(win)
		s.gate, p.gate = g, g
	}
	defer func() { disconnectAll(s.clients, 64) }()
	if err := s.connect(ctx, &cm, uint16(rm)); err != nil {
		return err
	}
	stop, err := p.connectPaho(ctx, &cm, pubs)
	defer stop()
	if err != nil {
		return err
	}

	// Publish, cancelling the publishers if nothing moves for idle (a
	// window waiting for messages the broker dropped, a broker gone).
	sendCtx, cancelSend := withDuration(ctx, duration)
	defer cancelSend()
	cpu := startCPU(cm.brokerPID)
	pubDone := make(chan time.Duration, 1)
	go func() { pubDone <- p.run(sendCtx) }()
	var took time.Duration
	published := false
	err = waitProgress(ctx, idle, func() bool {
		if !published {
			select {
			case took = <-pubDone:
				published = true
			default:
				return false
			}
		}
		return s.received() >= p.expected.Load()
	}, func() int64 { return p.sent.Load() + s.received() })
	stopped := "count"
	switch {
	case errors.Is(err, errIdle):
		stopped = "idle"
	case err != nil:
		stopped = "interrupted"
	case sendCtx.Err() != nil:
		stopped = "duration"
	case p.errs.Load() > 0 || s.lostConns.Load() > 0:
		stopped = "error"
	}
	if !published {
		cancelSend()
		took = <-pubDone
	}
	res := &PubSubResult{
		Header:   cm.header("pubsub"),
		QoS:      qos,
		Pubs:     pubs,
		Subs:     subs,
		Size:     o.Size,
		Topic:    o.Topic,
		Filter:   filter,
		Window:   win,
		Sent:     p.sent.Load(),
		Errors:   p.errs.Load(),
		Expected: p.expected.Load(),
	}
	res.Header.Stopped = stopped
	switch {
	case o.Rate > 0:
		res.TargetRate = o.Rate
	case o.Interval > 0:
		res.TargetRate = float64(pubs) / o.Interval.Seconds()
	}
	res.BrokerCPU.set(cpu, s.received())
	res.PubSeconds = seconds(took)
	res.PubRate = rate(res.Sent, took)
	hist := s.disconnect()
	res.Received = s.received()
	res.Lost = max(res.Expected-res.Received, 0)
	res.Extra = max(res.Received-res.Expected, 0)
	span := s.span()
	res.RecvSeconds = seconds(span)
	res.RecvRate = rate(max(res.Received-1, 0), span)
	res.Latency = hist.summary()
	if qos > 0 {
		res.AckLatency = p.acks.summary()
	}
	res.FirstErr = p.firstError()
	if res.FirstErr == "" {
		res.FirstErr = s.firstError()
	}
	res.Errors += s.lostConns.Load()
	if err := emit(stdout, cm.json, res); err != nil {
		return err
	}
	if res.Lost > 0 || res.Errors > 0 {
		return errRunFailed
	}
	return nil
}
