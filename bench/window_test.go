package bench

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWindow_BlocksUntilReleased(t *testing.T) {
	w := newWindow(4)
	ctx := context.Background()
	for range 4 {
		if err := w.acquire(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- w.acquire(ctx, 1) }()
	select {
	case err := <-done:
		t.Fatalf("acquire on a full window returned %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	w.release(1) // 3 outstanding: not yet below the low mark of 3
	w.release(1) // 2: wakes the waiter
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := w.n.Load(); n != 3 {
		t.Errorf("outstanding = %d, want 3", n)
	}
}

func TestWindow_ContextEndsWait(t *testing.T) {
	w := newWindow(1)
	if err := w.acquire(context.Background(), 50); err != nil { // a fan-out message may exceed the limit
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.acquire(ctx, 1) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("acquire = %v, want context.Canceled", err)
	}
}
