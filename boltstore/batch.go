package boltstore

import (
	"sync"
	"time"
)

// batcher is a group commit: goroutines hand it items, and its own
// goroutine passes them to flush in batches of at most max items, a batch
// closing max items or interval after its first item, whichever comes
// first. flush runs on the batcher's goroutine only, so it may keep state
// without locks. tick, when set, runs every tickEvery on the same
// goroutine between batches (maintenance while no item comes).
//
// It does not wake for every item: after a batch's first item it sleeps
// until the interval passes or a producer finds a batch's worth queued,
// then takes what is queued. At a high rate that is one wake-up a batch
// instead of one a message, which on a small gateway is CPU the
// publishers get back. The message writer, the meta committer
// (writer.go) and the archive use it.
type batcher[T any] struct {
	in        chan T
	full      chan struct{} // a producer's signal that max items are queued
	max       int
	interval  time.Duration
	flush     func([]T)
	tick      func()
	tickEvery time.Duration

	quit    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// newBatcher returns a batcher whose queue holds 4*max items; start it
// with run on a goroutine of its own.
func newBatcher[T any](max int, interval time.Duration, flush func([]T)) *batcher[T] {
	return &batcher[T]{in: make(chan T, 4*max), full: make(chan struct{}, 1), max: max, interval: interval, flush: flush,
		quit: make(chan struct{}), stopped: make(chan struct{})}
}

// add queues v for a batch. It blocks while the queue is full, which
// paces the callers to flush, and reports false, without queueing, once
// the batcher is closed.
func (b *batcher[T]) add(v T) bool {
	select {
	case <-b.quit:
		return false
	default:
	}
	select {
	case b.in <- v:
	case <-b.quit:
		return false
	}
	if len(b.in) >= b.max {
		select {
		case b.full <- struct{}{}:
		default: // already signalled
		}
	}
	return true
}

// close stops the batcher after flushing what is queued. It is
// idempotent and returns once run has returned.
func (b *batcher[T]) close() {
	b.once.Do(func() { close(b.quit) })
	<-b.stopped
}

// closeUnstarted marks a batcher that will never run as stopped.
func (b *batcher[T]) closeUnstarted() {
	b.once.Do(func() { close(b.quit) })
	close(b.stopped)
}

// run collects and flushes batches until close.
func (b *batcher[T]) run() {
	defer close(b.stopped)
	batch := make([]T, 0, b.max)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var tickc <-chan time.Time
	if b.tick != nil && b.tickEvery > 0 {
		t := time.NewTicker(b.tickEvery)
		defer t.Stop()
		tickc = t.C
	}
	for {
		batch = batch[:0]
		select {
		case v := <-b.in:
			batch = append(batch, v)
		case <-tickc:
			b.tick()
			continue
		case <-b.quit:
			b.drain(batch)
			return
		}
		if len(b.in) < b.max-1 {
			// Not a batch's worth queued: sleep until there is one or
			// the interval has passed.
			timer.Reset(b.interval)
			select {
			case <-timer.C:
			case <-b.full:
			case <-b.quit:
			}
			timer.Stop()
		}
	collect:
		for len(batch) < b.max {
			select {
			case v := <-b.in:
				batch = append(batch, v)
			default:
				break collect
			}
		}
		select {
		case <-b.full: // taken; the next round looks at the queue itself
		default:
		}
		b.flush(batch)
		clear(batch) // drop references to the items' buffers
	}
}

// drain flushes what is still queued at close.
func (b *batcher[T]) drain(batch []T) {
	for {
		select {
		case v := <-b.in:
			batch = append(batch, v)
			if len(batch) == b.max {
				b.flush(batch)
				batch = batch[:0]
			}
		default:
			if len(batch) > 0 {
				b.flush(batch)
			}
			return
		}
	}
}
