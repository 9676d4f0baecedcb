package broker

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// directWriter writes a connection's acknowledgements on the goroutine
// that made them ready, the store's writer, with one non-blocking write
// instead of a writer goroutine started for a few bytes (signalStored).
// Only plain TCP connections have one: TLS and WebSocket frame their
// bytes in their own Write. Its fields belong to whoever holds
// conn.writing, like the write side of the socket.
type directWriter struct {
	tc *net.TCPConn
	rc syscall.RawConn
	fn func(fd uintptr) bool // writeFD, bound once: a closure per write would be allocated

	// writeFD's argument and results.
	buf []byte
	n   int
	err error

	// unsent is what a short write left, for flush to write before
	// anything else.
	unsent []byte
}

// write writes b with one system call that does not wait for the socket
// to be writable. It returns how much went out; a full socket buffer is
// a short count, not an error. Its errors are *net.OpError, as the
// socket's Write returns.
func (d *directWriter) write(b []byte) (int, error) {
	d.buf = b
	err := d.rc.Write(d.fn) // the socket is closed, or the write deadline passed
	n := d.n
	if err == nil && d.err != nil {
		err = &net.OpError{Op: "write", Net: "tcp", Source: d.tc.LocalAddr(), Addr: d.tc.RemoteAddr(), Err: os.NewSyscallError("write", d.err)}
	}
	d.buf, d.n, d.err = nil, 0, nil
	return n, err
}

// signalStored is signal for acknowledgements a store commit made ready;
// it runs on the store's writer goroutine (or on the reader, for a store
// that refused a message at once) and never blocks.
//
// When no writer runs and nothing is pending, the ready control packets
// are all there is to write: what a writer started now would find. It
// then writes them itself, in one non-blocking write, holding writing as
// the writer would, so that nothing else writes meanwhile. This is the
// hot case of a publisher's PUBACKs after each commit. What the write
// leaves, with the socket's buffer full, is kept in direct.unsent and a
// writer goroutine is started for it, which writes it first, under the
// write deadline. Anything else pending (deliveries, replies, the final
// DISCONNECT) is the writer goroutine's, as with signal.
//
// The directWriter is made at the first such write, so that a connection
// that never publishes to durable sessions does not carry one.
func (c *conn) signalStored() {
	if !c.plainTCP || !c.writing.CompareAndSwap(false, true) {
		c.signal()
		return
	}
	if c.direct == nil {
		c.direct = newDirectWriter(c.nc) // writing held: its fields are ours
	}
	d := c.direct
	c.outMu.Lock()
	if d == nil || c.pending.Load() || c.final != nil || c.finished {
		c.outMu.Unlock()
		c.pending.Store(true)
		c.startWriter() // signal's work, writing already held
		return
	}
	ctl := c.ctl
	c.ctl, c.ctlSpare = c.ctlSpare[:0], nil
	c.outMu.Unlock()

	bp := wbufPool.Get().(*[]byte)
	buf := c.encodeControl((*bp)[:0], ctl)
	var (
		n   int
		err error
	)
	if len(buf) > 0 {
		c.srv.stats.acksDirect.Add(1)
		n, err = d.write(buf)
		c.srv.stats.bytesSent.Add(uint64(n))
	}
	switch {
	case err == nil && n == len(buf):
		// As flushReplies: a signal that found writing set started
		// nothing, so its work is taken back here.
		c.writing.Store(false)
		if c.pending.Load() {
			c.signal()
		}
	case err == nil || errors.Is(err, os.ErrDeadlineExceeded):
		// The socket's buffer is full (or the writer's last deadline
		// passed, which only a write of the writer renews): the writer
		// goroutine writes the rest, waiting as it does.
		c.srv.stats.acksDirectShort.Add(1)
		d.unsent = append([]byte(nil), buf[n:]...)
		c.startWriter()
	default:
		// Leave writing set, as the writer does: nothing writes again.
		c.writeFailed(err)
	}
	*bp = buf[:0]
	wbufPool.Put(bp)
}
