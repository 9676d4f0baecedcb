package broker

import (
	"io"
	"net"
	"sync"
	"time"
)

const bigBufSize = 16 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bigBufSize); return &b }}

// reader is the connection's buffered reader. An idle connection holds no
// pooled buffer: reads that find little data use the small array inside
// the reader, and a pooled buffer is taken only while data arrives faster
// than one small read can hold. This keeps idle connections cheap.
type reader struct {
	nc      net.Conn
	timeout time.Duration // read deadline of each packet, from its first socket read; 0 for none
	armed   bool          // the deadline of the packet being read is set
	buf     []byte
	r, w    int
	big     *[]byte // pooled buffer in use, or nil
	lastN   int     // bytes returned by the last socket read
	n       uint64  // bytes read from the socket
	small   [64]byte
}

func (r *reader) fill() error {
	if r.big != nil && r.lastN < 1024 {
		bufPool.Put(r.big)
		r.big = nil
	}
	dst := r.small[:]
	if r.big != nil {
		dst = *r.big
	}
	if err := r.arm(); err != nil {
		return err
	}
	n, err := r.nc.Read(dst)
	r.lastN = n
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	r.n += uint64(n)
	if r.big == nil && n == len(r.small) {
		r.big = bufPool.Get().(*[]byte)
		copy(*r.big, dst[:n])
		dst = *r.big
	}
	r.buf, r.r, r.w = dst, 0, n
	return nil // an error with n > 0 comes back on the next read
}

// nextPacket starts the read deadline of the next packet. The deadline is
// set at the packet's first socket read and not moved by later ones, so
// a client trickling the bytes of one packet is timed out all the same
// [MQTT-3.1.2-22].
func (r *reader) nextPacket() { r.armed = false }

// arm sets the read deadline of the packet being read, if not yet set.
func (r *reader) arm() error {
	if r.timeout <= 0 || r.armed {
		return nil
	}
	if err := r.nc.SetReadDeadline(time.Now().Add(r.timeout)); err != nil {
		return err
	}
	r.armed = true
	return nil
}

// ReadByte implements io.ByteReader for packet.ReadHeader.
func (r *reader) ReadByte() (byte, error) {
	if r.r == r.w {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	b := r.buf[r.r]
	r.r++
	return b, nil
}

// readFull fills p, from the buffer first and then from the socket.
func (r *reader) readFull(p []byte) error {
	n := copy(p, r.buf[r.r:r.w])
	r.r += n
	for n < len(p) {
		if len(p)-n >= bigBufSize/2 {
			// Large bodies go straight into p.
			if err := r.arm(); err != nil {
				return err
			}
			m, err := io.ReadFull(r.nc, p[n:])
			r.n += uint64(m)
			r.lastN = m
			if err != nil {
				return err
			}
			return nil
		}
		if err := r.fill(); err != nil {
			return err
		}
		m := copy(p[n:], r.buf[r.r:r.w])
		r.r += m
		n += m
	}
	return nil
}

// release returns the pooled buffer; the reader must not be used again.
func (r *reader) release() {
	if r.big != nil {
		bufPool.Put(r.big)
		r.big = nil
	}
	r.buf = nil
}
