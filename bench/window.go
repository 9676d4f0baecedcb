package bench

import (
	"context"
	"sync"
	"sync/atomic"
)

// A window bounds the deliveries outstanding between the publishers and
// the subscribers of one pubsub run: a publisher acquires as many
// deliveries as its message will make before sending it, and subscribers
// release one per message received. It keeps a publisher from filling the
// broker's queues faster than subscribers drain them, where a broker may
// rightly drop QoS 0 messages or hit its queue limit; the run then
// measures sustained throughput, not queue capacity.
//
// The methods are safe for concurrent use. release never blocks; acquire
// blocks while the window is full.
type window struct {
	limit int64
	n     atomic.Int64 // outstanding deliveries

	mu   sync.Mutex // held by waiters between their check and Wait
	cond *sync.Cond
}

func newWindow(limit int64) *window {
	w := &window{limit: max(limit, 1)}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// acquire adds n outstanding deliveries, first waiting until fewer than
// limit are outstanding. Concurrent callers may overshoot the limit by one
// message each. It returns ctx's error if ctx ends first.
func (w *window) acquire(ctx context.Context, n int) error {
	if w.n.Load() >= w.limit {
		stop := context.AfterFunc(ctx, func() {
			w.mu.Lock()
			w.cond.Broadcast()
			w.mu.Unlock()
		})
		w.mu.Lock()
		for w.n.Load() >= w.limit && ctx.Err() == nil {
			w.cond.Wait()
		}
		w.mu.Unlock()
		stop()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	w.n.Add(int64(n))
	return nil
}

// release removes n outstanding deliveries and wakes the waiting
// publishers when the count falls below three quarters of the limit.
func (w *window) release(n int) {
	v := w.n.Add(-int64(n))
	low := w.limit - w.limit/4
	if v < low && v+int64(n) >= low {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}
