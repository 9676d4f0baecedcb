package bench

import (
	"context"
	"sync"
	"time"
)

// connectResult is the outcome of connecting a set of clients.
type connectResult[C any] struct {
	clients  []C // index i is client i, nil when it failed
	ok       int
	failed   int
	firstErr error
	took     time.Duration // first dial to last CONNACK
	latency  histogram     // dial to CONNACK, per successful client
}

// connectAll connects n clients, opts(i) describing client i, with at most
// parallel handshakes in flight and, when perSec > 0, starting them at
// that rate. It blocks until every attempt has ended or ctx ends; clients
// not yet started when ctx ends count as failed.
func connectAll(ctx context.Context, n, parallel int, perSec float64, opts func(i int) clientOptions) *connectResult[*client] {
	return connectEach(ctx, n, parallel, perSec, func(ctx context.Context, i int) (*client, error) {
		return connect(ctx, opts(i))
	})
}

// connectEach is connectAll for any kind of client, dial making client i.
func connectEach[C any](ctx context.Context, n, parallel int, perSec float64, dial func(ctx context.Context, i int) (C, error)) *connectResult[C] {
	res := &connectResult[C]{clients: make([]C, n)}
	sem := make(chan struct{}, max(parallel, 1))
	var (
		wg sync.WaitGroup
		mu sync.Mutex // guards the counters, firstErr and latency of res
	)
	start := time.Now()
	for i := range n {
		if perSec > 0 {
			if !sleepUntil(ctx, start.Add(time.Duration(float64(i)/perSec*float64(time.Second)))) {
				break
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			c, err := dial(cctx, i)
			cancel()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed++
				if res.firstErr == nil {
					res.firstErr = err
				}
				return
			}
			res.clients[i] = c
			res.ok++
			res.latency.record(time.Since(t0))
		}()
	}
	wg.Wait()
	res.took = time.Since(start)
	if missing := n - res.ok - res.failed; missing > 0 {
		res.failed += missing
		if res.firstErr == nil {
			res.firstErr = ctx.Err()
		}
	}
	return res
}

// disconnectAll disconnects the clients (paho's or pub's own; nil ones
// failed to connect), parallel at a time, and waits.
func disconnectAll[C interface {
	comparable
	disconnect()
}](clients []C, parallel int) {
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	var none C
	for _, c := range clients {
		if c == none {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.disconnect()
			<-sem
		}()
	}
	wg.Wait()
}

// sleepUntil waits until t and reports whether ctx is still live.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
