package broker

import (
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"gatemq/broker/packet"
	"gatemq/session"
)

// closeReason records why a connection ended; it decides whether the will
// is published.
type closeReason uint32

const (
	closeNone        closeReason = iota
	closeNormal                  // client DISCONNECT 0x00: will discarded
	closeWithWill                // client DISCONNECT 0x04
	closeNetwork                 // EOF, reset, write timeout
	closeProtocol                // the client broke the protocol
	closeKeepAlive               // nothing received for 1.5 x keepalive
	closeTakenOver               // another connection took the client ID
	closeShutdown                // the server is shutting down: no will
	closeServerError             // a bug: recovered panic
	closeKicked                  // an operator kicked the client (admin API)
)

var closeNames = [...]string{"none", "normal", "disconnect-with-will", "network", "protocol-error",
	"keepalive-timeout", "taken-over", "shutdown", "server-error", "kicked"}

func (r closeReason) String() string {
	if int(r) < len(closeNames) {
		return closeNames[r]
	}
	return "invalid"
}

// errClientDisconnect ends the read loop after the client's DISCONNECT.
var errClientDisconnect = errors.New("client disconnected")

// conn is one client connection. Its reader goroutine (serve) owns the
// reader and all session changes; its writer goroutine (writeLoop) owns
// the socket's write side. See doc.go for the lock order.
type conn struct {
	srv    *Server
	ln     *listener
	lim    *Limits // the server's when the connection was accepted
	nc     net.Conn
	rd     reader
	remote string
	// connectBy is when the TLS handshake and CONNECT must be done by,
	// set by serve; reader-owned.
	connectBy time.Time

	// Set by the reader during CONNECT before the writer starts, then
	// read-only.
	version packet.Version
	// Beside version, where the struct had room: a connection of 704
	// bytes, not 768.
	plainTCP    bool // a *net.TCPConn on a system with a directWriter; set by newConn
	ackQueued   bool // in the server's ackGroup; guarded by its mu
	clientID    string
	username    string // authenticated or from the certificate; "" for anonymous
	sess        *session.Session
	maxOut      int         // client's Maximum Packet Size, 0 for none
	aliasMaxOut uint16      // client's Topic Alias Maximum
	problemInfo bool        // client's Request Problem Information
	keepAlive   uint16      // negotiated keepalive, seconds
	connected   atomic.Bool // set once CONNACK is queued; orders the fields above for other goroutines

	// presetsApplied is set once the reader has applied the client's
	// preset subscriptions; guarded by Server.presets.mu.
	presetsApplied bool

	// Reader-owned.
	aliasIn       map[uint16]string
	will          *will
	connectExpiry uint32 // Session Expiry Interval from CONNECT

	// Writer-owned.
	aliasOut map[string]uint16

	// outMu guards ctl, ctlSpare, final, acks and finished.
	outMu    sync.Mutex
	ctl      []packet.Packet
	ctlSpare []packet.Packet
	final    *packet.Disconnect // written last, then the socket is closed
	acks     []*ackSlot         // acknowledgements waiting for earlier ones (durable stores)
	finished bool               // the reader is cleaning up: no writer starts any more

	// The writer goroutine runs only while there is something to write:
	// signal sets pending and starts it unless writing is already set.
	// Whoever sets writing owns the socket's write side until it clears
	// it: the writer goroutine, the reader in flushReplies, the store's
	// goroutine in signalStored.
	pending   atomic.Bool
	writing   atomic.Bool
	direct    *directWriter // plain TCP only, made when first used; see signalStored
	done      chan struct{} // closed when the socket is closed
	cleaned   chan struct{} // closed when the session is detached and the will handled
	closeOnce sync.Once
	why       atomic.Uint32 // closeReason, set once
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv:         s,
		lim:         s.limits(),
		nc:          nc,
		remote:      nc.RemoteAddr().String(),
		problemInfo: true,
		done:        make(chan struct{}),
		cleaned:     make(chan struct{}),
	}
	c.rd.nc = nc
	c.plainTCP = hasDirectWriter(nc)
	return c
}

// serve is the connection's reader goroutine.
func (c *conn) serve() {
	defer c.srv.wg.Done()
	defer c.recoverPanic()
	c.srv.stats.connOpened()
	c.connectBy = time.Now().Add(c.srv.opts.ConnectTimeout)
	err := c.handshakeTLS()
	if err == nil {
		err = c.handshake()
	}
	for err == nil {
		err = c.readAndHandle()
	}
	c.closeForErr(err)
	c.cleanup()
}

// recoverPanic turns a panic in the connection's goroutine into a logged
// error and a closed connection, as net/http does.
func (c *conn) recoverPanic() {
	if v := recover(); v != nil {
		c.srv.log.Error("panic serving connection", logClientID, c.clientID, logRemote, c.remote,
			logErr, fmt.Sprint(v), "stack", string(debug.Stack()))
		c.setWhy(closeServerError)
		c.closeSocket()
		select {
		case <-c.cleaned:
		default:
			c.cleanup()
		}
	}
}

func (c *conn) setWhy(r closeReason) {
	c.why.CompareAndSwap(uint32(closeNone), uint32(r))
}

// closeSocket closes the network connection once, unblocking the reader
// and stopping the writer.
func (c *conn) closeSocket() {
	c.closeOnce.Do(func() {
		c.nc.Close()
		close(c.done)
	})
}

// signal tells the writer there is something to write, starting its
// goroutine if none runs. It never blocks. Acknowledgements a store
// commit made ready go through signalStored instead, which on a plain
// TCP connection writes them on the store's goroutine when no writer
// runs and nothing else is pending.
func (c *conn) signal() {
	c.pending.Store(true)
	if c.writing.CompareAndSwap(false, true) {
		c.startWriter()
	}
}

// startWriter starts the writer goroutine for a caller that has set
// writing. Once the reader cleans up, no writer starts and writing stays
// set: the server's WaitGroup may be at zero by then, and a store
// commit's callback (a PUBREL or SUBACK sent after the commit) can come
// after the server closed.
func (c *conn) startWriter() {
	c.outMu.Lock()
	start := !c.finished
	if start {
		c.srv.wg.Add(1) // before cleanup's wg.Done: the count is not zero
	}
	c.outMu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// send queues a control packet for the writer.
func (c *conn) send(pk packet.Packet) {
	c.outMu.Lock()
	c.ctl = append(c.ctl, pk)
	c.outMu.Unlock()
	c.signal()
}

// reply queues a control packet answering what the reader is handling
// (PUBACK, PINGRESP, ...). It does not wake a writer: the reader writes
// its replies itself once its input is drained (flushReplies), so a
// client's acknowledgements cost no goroutine switch and go out together.
// Only the reader goroutine calls it.
func (c *conn) reply(pk packet.Packet) {
	c.outMu.Lock()
	c.ctl = append(c.ctl, pk)
	c.outMu.Unlock()
	c.pending.Store(true)
}

// flushReplies writes what is pending on the reader goroutine, unless a
// writer goroutine already runs (it will). The reader calls it before a
// read that may block.
func (c *conn) flushReplies() error {
	if !c.pending.Load() || !c.writing.CompareAndSwap(false, true) {
		return nil
	}
	c.pending.Store(false)
	if err := c.flush(); err != nil {
		// Leave writing set, as the writer does: nothing writes again.
		c.closeSocket()
		if errors.Is(err, errFinalSent) {
			return net.ErrClosed
		}
		return err
	}
	c.writing.Store(false)
	if c.pending.Load() {
		c.signal() // queued meanwhile by another goroutine
	}
	return nil
}

// disconnect sends a v5 DISCONNECT with reason and then closes the
// connection; for 3.x, where the server has no DISCONNECT, it just
// closes. It returns at once; the writer closes the socket after the
// packet, within the write timeout.
func (c *conn) disconnect(why closeReason, reason packet.Reason) {
	c.setWhy(why)
	if !c.connected.Load() || c.version != packet.V5 {
		c.closeSocket()
		return
	}
	pk := &packet.Disconnect{Reason: reason}
	c.outMu.Lock()
	if c.final == nil {
		c.final = pk
	}
	c.outMu.Unlock()
	c.signal()
}

// shutdown is called by Server.Close.
func (c *conn) shutdown() {
	c.disconnect(closeShutdown, packet.ServerShuttingDown)
}

// closeForErr ends the read loop's connection according to err.
func (c *conn) closeForErr(err error) {
	var reason packet.Reason
	switch {
	case errors.Is(err, errClientDisconnect):
		c.closeSocket()
		return
	case errors.As(err, &reason):
		why := closeProtocol
		if reason == packet.KeepAliveTimeout {
			why = closeKeepAlive
		}
		c.srv.log.Debug("closing connection", logClientID, c.clientID, logRemote, c.remote, logReason, reason.String(), logErr, err)
		c.disconnect(why, reason)
		// Give the writer a moment to send the DISCONNECT.
		select {
		case <-c.done:
		case <-time.After(time.Second):
		}
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && c.connected.Load() {
			c.srv.log.Debug("keepalive timeout", logClientID, c.clientID, logRemote, c.remote)
			c.disconnect(closeKeepAlive, packet.KeepAliveTimeout)
			select {
			case <-c.done:
			case <-time.After(time.Second):
			}
		} else {
			c.setWhy(closeNetwork)
			if !errorIsClosed(err) {
				c.srv.log.Info("connection error", logClientID, c.clientID, logRemote, c.remote, logErr, err)
			} else {
				c.srv.log.Debug("connection closed", logClientID, c.clientID, logRemote, c.remote, logErr, err)
			}
		}
	}
	c.closeSocket()
}

// cleanup runs once on the reader goroutine after the socket is closed:
// it detaches the session, decides the will and starts session expiry.
func (c *conn) cleanup() {
	defer close(c.cleaned)
	c.outMu.Lock()
	c.finished = true
	c.outMu.Unlock()
	c.rd.release()
	c.srv.removeConn(c)
	c.ln.conns.Add(-1)
	c.srv.stats.connected.Add(-1)
	if c.sess == nil {
		return
	}
	why := closeReason(c.why.Load())
	c.srv.log.Debug("client disconnected", logClientID, c.clientID, logReason, why.String())
	c.srv.status.disconnected(c, why)
	c.srv.connClosed(c, why)
}
