package bench

import (
	"bufio"
	"net"
	"runtime"
	"sync"
	"time"
)

// maxPending is how many written bytes a bufConn holds before Write blocks
// until the flusher has drained them: the back-pressure that keeps a QoS 0
// publisher from outrunning the socket.
const maxPending = 256 << 10

// A bufConn is the net.Conn handed to paho. paho reads a packet a byte or
// two at a time (fixed header, then each varint byte) and writes each packet
// with its own write call; over a bare socket that is three or four read
// syscalls and one write syscall per packet, which would make the load tool
// itself the bottleneck. bufConn reads through a bufio.Reader, and its
// writes only append to a buffer that one flusher goroutine writes out, so a
// burst of packets from any number of goroutines costs one write syscall.
//
// paho locks a writer that is a sync.Locker for the writes of one packet,
// so packets never interleave. Read is for one goroutine at a time (paho's
// reader); Write, Lock and Close are safe for concurrent use. Close flushes
// what was written before closing the socket, so a DISCONNECT written just
// before it still reaches the broker.
type bufConn struct {
	net.Conn
	r *bufio.Reader

	// pkt is held by paho across the writes of one packet.
	pkt sync.Mutex

	// mu guards buf, writing, err and closing; cond is signalled on mu
	// whenever buf is swapped out, a write ends or err is set.
	mu      sync.Mutex
	cond    sync.Cond
	buf     []byte
	writing bool
	err     error
	closing bool

	kick      chan struct{} // capacity 1: buf has data for the flusher
	done      chan struct{} // closed when the flusher has exited
	closeOnce sync.Once
	closeErr  error
}

func newBufConn(nc net.Conn, readBuf int) *bufConn {
	c := &bufConn{
		Conn: nc,
		r:    bufio.NewReaderSize(nc, readBuf),
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	c.cond.L = &c.mu
	go c.flushLoop()
	return c
}

// Lock and Unlock make bufConn a sync.Locker, which paho's
// ControlPacket.WriteTo holds while it writes one packet.
func (c *bufConn) Lock()   { c.pkt.Lock() }
func (c *bufConn) Unlock() { c.pkt.Unlock() }

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write appends p to the pending buffer and returns; it blocks only while
// maxPending bytes wait for the flusher.
func (c *bufConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.buf) >= maxPending && c.err == nil && !c.closing {
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closing {
		return 0, net.ErrClosed
	}
	if len(c.buf) == 0 {
		// The buffer was empty, so no kick is pending: the flusher
		// either waits or is writing an earlier batch.
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// flushLoop writes out whatever has accumulated each time it is kicked; it
// exits on a write error or once Close has asked it to, after a last flush.
func (c *bufConn) flushLoop() {
	defer close(c.done)
	var spare []byte
	for range c.kick {
		// Let the goroutines that are ready to run write their packets
		// first: a yield costs far less than the write syscall it saves.
		runtime.Gosched()
		c.mu.Lock()
		b := c.buf
		c.buf = spare[:0]
		closing := c.closing
		c.writing = len(b) > 0
		c.cond.Broadcast()
		c.mu.Unlock()
		if len(b) > 0 {
			_, err := c.Conn.Write(b)
			c.mu.Lock()
			c.writing = false
			if err != nil {
				c.err = err
			}
			c.cond.Broadcast()
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
		if closing {
			return
		}
		if cap(b) <= 4*maxPending {
			spare = b
		} else {
			spare = nil
		}
	}
}

// flush blocks until everything written so far has been handed to the
// socket, or the connection failed, or timeout passed.
func (c *bufConn) flush(timeout time.Duration) {
	expired := false // guarded by mu
	t := time.AfterFunc(timeout, func() {
		c.mu.Lock()
		expired = true
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer t.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for (len(c.buf) > 0 || c.writing) && c.err == nil && !expired {
		c.cond.Wait()
	}
}

// Close flushes pending writes (waiting at most a second for a stuck
// peer) and closes the socket. It is idempotent and safe to call from any
// goroutine.
func (c *bufConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.cond.Broadcast()
		c.mu.Unlock()
		select {
		case c.kick <- struct{}{}:
		default:
		}
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		t := time.NewTimer(2 * time.Second)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}
