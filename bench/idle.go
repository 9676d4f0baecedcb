package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// runConn is `bench conn`: open -c connections at -r per second, hold them
// idle for -d, and report the connect rate, failures and, with
// -broker-pid, the broker's memory per connection.
func runConn(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("conn", flag.ContinueOnError)
	var (
		cm       common
		clients  int
		perSec   float64
		parallel int
		hold     time.Duration
		settle   time.Duration
	)
	cm.register(fs)
	fs.IntVar(&clients, "c", 1000, "number of `connections`")
	fs.Float64Var(&perSec, "r", 0, "connections opened per second (0: as fast as -parallel allows)")
	fs.IntVar(&parallel, "parallel", 64, "most handshakes in progress at once")
	fs.DurationVar(&hold, "d", 30*time.Second, "hold the connections idle this long once all are up (0: until interrupted)")
	fs.DurationVar(&settle, "settle", time.Second, "with -broker-pid, wait this long after the last connection before reading the broker's RSS")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case clients < 1:
		return usageErr(stderr, "conn", "-c must be at least 1")
	case perSec < 0 || parallel < 1 || hold < 0 || settle < 0:
		return usageErr(stderr, "conn", "-r, -d and -settle must not be negative, -parallel must be at least 1")
	}
	stopProf, err := cm.startProfile()
	if err != nil {
		return err
	}
	defer stopProf()
	res := &ConnResult{Header: cm.header("conn"), Clients: clients}
	if cm.brokerPID > 0 {
		var err error
		if res.RSSBeforeKB, err = procRSS(cm.brokerPID); err != nil {
			res.RSSError = err.Error()
		}
	}
	var dropped atomic.Int64
	cr := connectAll(ctx, clients, parallel, perSec, func(i int) clientOptions {
		co := cm.clientOptions("conn", i)
		co.ReceiveMaximum = 16 // paho allocates a channel this long per client
		co.ReadBuffer = 512
		co.OnLost = func(error) { dropped.Add(1) }
		return co
	})
	defer func() { disconnectAll(cr.clients, 256) }()
	res.Connected, res.Failed = cr.ok, cr.failed
	if cr.firstErr != nil {
		res.FirstErr = cr.firstErr.Error()
	}
	res.Seconds = seconds(cr.took)
	res.Rate = rate(int64(cr.ok), cr.took)
	res.ConnectLatency = cr.latency.summary()
	if !cm.json {
		fmt.Fprintf(stderr, "gatemq bench conn: %d connected, %d failed in %.1fs\n", cr.ok, cr.failed, seconds(cr.took))
	}

	heldFrom := time.Now()
	if cm.brokerPID > 0 && res.RSSError == "" && ctx.Err() == nil {
		sleepUntil(ctx, heldFrom.Add(settle))
		var err error
		if res.RSSAfterKB, err = procRSS(cm.brokerPID); err != nil {
			res.RSSError = err.Error()
		} else if cr.ok > 0 {
			res.RSSPer1000KB = float64(res.RSSAfterKB-res.RSSBeforeKB) * 1000 / float64(cr.ok)
			res.RSSPer1000KB = float64(int64(res.RSSPer1000KB + 0.5))
		}
	}
	res.Stopped = "duration"
	if hold > 0 {
		sleepUntil(ctx, heldFrom.Add(hold))
	} else {
		<-ctx.Done()
	}
	if ctx.Err() != nil {
		res.Stopped = "interrupted"
	}
	res.HeldSeconds = seconds(time.Since(heldFrom))
	res.Dropped = dropped.Load()
	if err := emit(stdout, cm.json, res); err != nil {
		return err
	}
	if res.Failed > 0 || res.Dropped > 0 {
		return errRunFailed
	}
	return nil
}
