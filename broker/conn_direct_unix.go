//go:build unix

package broker

import (
	"net"
	"syscall"
)

// hasDirectWriter reports whether newDirectWriter makes one for nc.
func hasDirectWriter(nc net.Conn) bool {
	_, ok := nc.(*net.TCPConn)
	return ok
}

// newDirectWriter returns a directWriter for a plain TCP connection, or
// nil.
func newDirectWriter(nc net.Conn) *directWriter {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	d := &directWriter{tc: tc, rc: rc}
	d.fn = d.writeFD
	return d
}

// writeFD writes d.buf to fd once. Go's sockets are non-blocking, so a
// full socket buffer comes back at once, as EAGAIN or a short count,
// both taken for a short count. It returns true: RawConn.Write is not to
// wait for the socket to be writable and call it again.
func (d *directWriter) writeFD(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), d.buf)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			err = nil
		}
		d.n, d.err = max(n, 0), err
		return true
	}
}
