package broker

import (
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

const bigBufSize = 16 << 10

// bodyChunk is the most allocated for a packet body before its bytes
// arrive; see readBody.
const bodyChunk = 4 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bigBufSize); return &b }}

// reader is the connection's buffered reader. An idle connection holds no
// pooled buffer: reads that find little data use the small array inside
// the reader, and a pooled buffer is taken only while data arrives faster
// than one small read can hold. This keeps idle connections cheap.
//
// The small array holds a few typical sensor PUBLISHes: at 64 bytes, a
// publisher streaming 80-byte packets took 1.3 reads per packet, and the
// read syscalls were 14% of the broker's CPU. 256 bytes cost as little
// CPU as 512 in the same load, and keep the connection in a 704-byte
// allocation instead of 1 KiB.
type reader struct {
	nc      net.Conn
	timeout time.Duration // read deadline of each packet, from its first socket read; 0 for none
	armed   bool          // the deadline of the packet being read is set
	until   time.Time     // the socket's read deadline, as last set
	buf     []byte
	r, w    int
	big     *[]byte // pooled buffer in use, or nil
	lastN   int     // bytes returned by the last socket read
	n       uint64  // bytes read from the socket
	small   [256]byte
}

func (r *reader) fill() error {
	if r.big != nil && r.lastN <= len(r.small) {
		// The last read would have fitted the small array: the burst
		// is over.
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
// The deadline is timeout plus up to a 64th of it: a deadline set that
// recently is kept rather than moved, since at a high packet rate moving
// the socket's timer for every read costs more than reading.
func (r *reader) arm() error {
	if r.timeout <= 0 || r.armed {
		return nil
	}
	now := time.Now()
	if r.until.Sub(now) < r.timeout {
		r.until = now.Add(r.timeout + r.timeout/64)
		if err := r.nc.SetReadDeadline(r.until); err != nil {
			return err
		}
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

// readBody reads a packet body of n bytes into a new slice. A body of up
// to bodyChunk bytes is allocated at once; a larger one starts at
// bodyChunk and doubles as its bytes arrive. So a client that announces a
// large packet and sends little of it (a thousand unauthenticated
// sockets each announcing MaxPacketSize, say) costs what it sent, not
// what it announced, at the price of copying a large body about once.
func (r *reader) readBody(n int) ([]byte, error) {
	if n <= bodyChunk {
		p := make([]byte, n)
		if err := r.readFull(p); err != nil {
			return nil, err
		}
		return p, nil
	}
	p := make([]byte, 0, bodyChunk)
	for len(p) < n {
		if len(p) == cap(p) {
			p = slices.Grow(p, min(n-len(p), len(p)))
		}
		m, err := r.readSome(p[len(p):min(cap(p), n)])
		p = p[:len(p)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return p, nil
}

// readSome reads at least one byte into p: from the buffer if it holds
// any, else with one socket read straight into p.
func (r *reader) readSome(p []byte) (int, error) {
	if r.r < r.w {
		n := copy(p, r.buf[r.r:r.w])
		r.r += n
		return n, nil
	}
	if err := r.arm(); err != nil {
		return 0, err
	}
	n, err := r.nc.Read(p)
	r.n += uint64(n)
	r.lastN = n
	if n > 0 {
		return n, nil // an error with n > 0 comes back on the next read
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return 0, err
}

// release returns the pooled buffer; the reader must not be used again.
func (r *reader) release() {
	if r.big != nil {
		bufPool.Put(r.big)
		r.big = nil
	}
	r.buf = nil
}
