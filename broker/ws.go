package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// WSPath is the HTTP path of MQTT over WebSocket.
const WSPath = "/mqtt"

// wsSubprotocols are the WebSocket subprotocols accepted, in order of
// preference: "mqtt" [MQTT-6.0.0-3], and "mqttv3.1", which MQTT 3.1
// clients (MQTT.js with protocolVersion 3) offer.
var wsSubprotocols = []string{"mqtt", "mqttv3.1"}

// wsListener is a net.Listener whose connections are WebSockets. It
// serves HTTP on a TCP (or TLS) listener, upgrades requests for WSPath
// and hands each WebSocket out through Accept as a net.Conn of binary
// messages, so the broker's connection code reads MQTT from it as from
// TCP: a packet may span messages and a message may hold several packets
// [MQTT-6.0.0-2]. The HTTP part, TLS handshake included, runs on
// net/http's per-connection goroutines under ReadHeaderTimeout, never in
// the broker's accept loop.
type wsListener struct {
	ln    net.Listener
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{} // closed by Close, or when the HTTP server stops
	once  sync.Once
	err   atomic.Pointer[error] // why the HTTP server stopped
}

// newWSListener serves WebSocket upgrades on ln, over TLS when cfg is
// set. It returns at once.
func (s *Server) newWSListener(ln net.Listener, cfg *tls.Config) *wsListener {
	w := &wsListener{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc(WSPath, w.upgrade)
	w.srv = &http.Server{
		Handler: mux,
		// The upgrade request must arrive as fast as CONNECT would; no
		// ReadTimeout or WriteTimeout, whose deadlines would outlive
		// the upgrade on the hijacked connection.
		ReadHeaderTimeout: s.opts.ConnectTimeout,
		IdleTimeout:       s.opts.ConnectTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	go func() {
		err := w.srv.Serve(ln)
		w.err.Store(&err)
		w.once.Do(func() { close(w.done) })
	}()
	return w
}

// Accept waits for the next WebSocket.
func (w *wsListener) Accept() (net.Conn, error) {
	select {
	case nc := <-w.conns:
		return nc, nil
	case <-w.done:
		if p := w.err.Load(); p != nil && !errors.Is(*p, http.ErrServerClosed) {
			return nil, *p
		}
		return nil, net.ErrClosed
	}
}

// Close stops the HTTP server and its listener; WebSockets already
// handed out stay open. It is idempotent.
func (w *wsListener) Close() error {
	w.once.Do(func() { close(w.done) })
	w.srv.Close()
	return nil
}

func (w *wsListener) Addr() net.Addr { return w.ln.Addr() }

// upgrade answers a request for WSPath: a WebSocket upgrade offering an
// MQTT subprotocol becomes a connection for Accept; anything else gets a
// 4xx (426 for a request that is not an upgrade, 400 for an upgrade
// without an MQTT subprotocol).
func (w *wsListener) upgrade(rw http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "" && !offersMQTT(r.Header) {
		http.Error(rw, `WebSocket subprotocol "mqtt" required`, http.StatusBadRequest)
		return
	}
	ws, err := websocket.Accept(rw, r, &websocket.AcceptOptions{
		Subprotocols: wsSubprotocols,
		// MQTT carries its own credentials in CONNECT, not in cookies a
		// browser would attach for another site, so the Origin check
		// protects nothing; browsers on any origin may connect, as to
		// Mosquitto.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return // Accept has answered with a 4xx
	}
	nc := &wsConn{Conn: websocket.NetConn(context.Background(), ws, websocket.MessageBinary), tls: r.TLS}
	select {
	case w.conns <- nc:
	case <-w.done:
		ws.CloseNow()
	}
}

// offersMQTT reports whether the Sec-WebSocket-Protocol headers list an
// MQTT subprotocol.
func offersMQTT(h http.Header) bool {
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			for _, want := range wsSubprotocols {
				if strings.EqualFold(strings.TrimSpace(p), want) {
					return true
				}
			}
		}
	}
	return false
}

// wsConn is a WebSocket as a net.Conn (websocket.NetConn). It reports the
// TLS state of a wss connection for certificate identities, and turns a
// read that fails because its deadline passed into a timeout error, as
// the broker expects of a keepalive timeout: NetConn closes the
// WebSocket then, and its error says "context canceled".
type wsConn struct {
	net.Conn
	tls      *tls.ConnectionState // nil over plain HTTP
	deadline atomic.Int64         // read deadline, Unix ns; 0 for none
}

// wsCloseWait bounds how long Close waits for the WebSocket close
// handshake: it sends a close frame and waits for the client's, which a
// client that is not reading never sends. coder/websocket gives up, and
// closes the TCP connection, after 5 s, and its CloseNow waits for a
// handshake in progress: past wsCloseWait, Close returns and lets the
// handshake finish or time out on its own, so that a shutdown is not
// held up by such a client.
const wsCloseWait = 500 * time.Millisecond

// Close closes the WebSocket with the close handshake, waiting for it at
// most wsCloseWait.
func (c *wsConn) Close() error {
	done := make(chan error, 1)
	go func() { done <- c.Conn.Close() }()
	t := time.NewTimer(wsCloseWait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return nil
	}
}

// ConnectionState returns the TLS state of a wss connection; that of a
// ws connection is empty.
func (c *wsConn) ConnectionState() tls.ConnectionState {
	if c.tls == nil {
		return tls.ConnectionState{}
	}
	return *c.tls
}

func (c *wsConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		if d := c.deadline.Load(); d != 0 && time.Now().UnixNano() >= d {
			return n, fmt.Errorf("websocket read: %w", os.ErrDeadlineExceeded)
		}
	}
	return n, err
}

func (c *wsConn) SetReadDeadline(t time.Time) error {
	var d int64
	if !t.IsZero() {
		d = t.UnixNano()
	}
	c.deadline.Store(d)
	return c.Conn.SetReadDeadline(t)
}

func (c *wsConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}
