package boltstore

import (
	"fmt"
	"time"
)

// maxCommitTime is how long a commit may run before Healthy reports the
// writer hung. An fsync on a slow SD card takes seconds, not this long.
const maxCommitTime = 20 * time.Second

// Healthy reports whether the store can take writes: it returns ErrClosed
// after Close, and an error wrapping ErrUnhealthy when the message writer or
// the metadata committer goroutine has exited, a message commit has run for
// longer than 20s, or the last message commit failed with an I/O error (a
// write refused by Options.MaxBytes is not a failure). A store opened
// ReadOnly is never healthy. Healthy does not block; it is safe for
// concurrent use, and meant for a service watchdog.
func (s *Store) Healthy() error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	select {
	case <-s.w.b.stopped:
		return fmt.Errorf("message writer: stopped: %w", ErrUnhealthy)
	default:
	}
	select {
	case <-s.mw.b.stopped:
		return fmt.Errorf("metadata committer: stopped: %w", ErrUnhealthy)
	default:
	}
	if start := s.w.commitStart.Load(); start != 0 {
		if d := time.Since(time.Unix(0, start)); d > maxCommitTime {
			return fmt.Errorf("message writer: commit running for %s: %w", d.Round(time.Second), ErrUnhealthy)
		}
	}
	if s.w.lastFailed.Load() {
		return fmt.Errorf("message writer: last commit failed: %w", ErrUnhealthy)
	}
	return nil
}
