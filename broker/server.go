package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"gatemq/session"
)

// Options configures a Server. Fields whose zero value would make no
// sense (sizes, timeouts, caps) fall back to the documented default; the
// others mean what they say at zero, so start from DefaultOptions.
type Options struct {
	// Logger receives the broker's log lines. Default: discard.
	Logger *slog.Logger
	// Version is reported in $SYS/broker/version.
	Version string

	// MaxPacketSize is the largest packet accepted, in bytes, checked
	// from the fixed header before the body is read. Default 1 MiB.
	MaxPacketSize int
	// MaxKeepAlive caps the keepalive clients may ask for, in seconds.
	// A v5 client asking for more (or for 0) is told Server Keep Alive;
	// a 3.x client asking for more is refused. Default 65535.
	MaxKeepAlive uint16
	// ConnectTimeout is how long a new connection has to send CONNECT.
	// Default 10s.
	ConnectTimeout time.Duration
	// SessionExpiry is the expiry of 3.x sessions with clean session 0;
	// 0 ends them with their connection. DefaultOptions: 2h.
	SessionExpiry time.Duration
	// MaxInflight is the Receive Maximum the server announces and the
	// cap on QoS 1/2 messages in flight to one client. Default 32.
	MaxInflight int
	// MaxQueued caps the messages queued for one session. Default 1000.
	MaxQueued int
	// MaxQueuedBytes caps the payload bytes queued for one session;
	// 0 means no byte cap.
	MaxQueuedBytes int
	// QueueQoS0 queues QoS 0 messages for offline persistent sessions.
	QueueQoS0 bool
	// DisableRetain refuses retained messages (v5 Retain Available 0).
	DisableRetain bool
	// MaxQoS is the highest QoS granted and accepted. DefaultOptions: 2.
	MaxQoS byte
	// TopicAliasMax is the Topic Alias Maximum the server accepts from
	// clients, and the most aliases it uses towards one; 0 means none.
	// An alias holds its topic (up to 64 KiB) for the connection's
	// life, so this bounds a connection's memory. DefaultOptions: 10.
	TopicAliasMax uint16
	// SysInterval is the period of the $SYS topics; 0 disables them.
	// DefaultOptions: 10s.
	SysInterval time.Duration
	// MaxConnections caps concurrent connections over all listeners;
	// 0 means no cap.
	MaxConnections int
	// MaxClientIDLen is the longest client identifier accepted, in
	// bytes; longer ones get CONNACK 0x85. Default 65535.
	MaxClientIDLen int
	// StatusRetention is how long the status record of a client gone
	// offline is kept (status.go); 0 keeps records for ever.
	StatusRetention time.Duration
	// DenySubscribe lists topic filters no client may subscribe to; a
	// SUBSCRIBE naming one exactly gets 0x80 (Unspecified error) for it.
	DenySubscribe []string

	// Limits against hostile and broken clients; see limits.go.

	// MaxTopicLevels caps the levels of a topic: a PUBLISH beyond it
	// ends the connection (v5: DISCONNECT 0x90), a will beyond it is
	// refused (v5: CONNACK 0x90), and a SUBSCRIBE filter beyond it (not
	// counting $share/{group}/) gets 0x8F, 0x80 in 3.x. Default 128.
	MaxTopicLevels int
	// MaxSubscriptions caps one session's subscriptions: a new one
	// beyond it gets 0x97 (Quota exceeded), 0x80 in 3.x. 0 means no cap.
	// DefaultOptions: 1000.
	MaxSubscriptions int
	// MaxUserProperties caps the User Properties of one packet, counted
	// while decoding: beyond it, v5 gets DISCONNECT or CONNACK 0x97
	// (Quota exceeded). Default 128.
	MaxUserProperties int
	// AwaitRelTimeout is how long an inbound QoS 2 message waits for
	// its PUBREL before the exchange is dropped and counted; the number
	// waiting is capped by MaxInflight, the Receive Maximum. Default 300s.
	AwaitRelTimeout time.Duration

	// Store makes persistent sessions durable: their state and the
	// messages for them are kept in it and survive restarts (see
	// durable.go). nil keeps every session in memory.
	Store Store
	// DurableBatch is how many stored messages a durable session reads
	// ahead. Default 100.
	DurableBatch int
	// Offline are the offline message rules (offline.go); they need a
	// Store, and are ignored, with an error logged, without one.
	Offline []OfflineRule

	// PresetRules are the configured preset subscriptions (presets.go);
	// SetPresetRules replaces them.
	PresetRules []PresetRule

	// Archive keeps every message on the topics of its rules (see
	// archive.go); nil archives nothing.
	Archive Archive
}

// ListenerOptions configures one listener given to ServeListener.
type ListenerOptions struct {
	// MaxConnections caps this listener's concurrent connections; 0
	// means no cap.
	MaxConnections int
	// MaxConnectionRate caps the new connections a second from one
	// source address (IPv6: one /64), with bursts of as many; those over
	// it are closed at once and counted. 0 means no cap.
	MaxConnectionRate int

	// TLS, when set, makes the listener speak TLS (see LoadTLS). The
	// handshake runs on the connection's goroutine within
	// Options.ConnectTimeout, never in the accept loop.
	TLS *tls.Config
	// WebSocket serves MQTT over WebSocket (path /mqtt, subprotocol
	// mqtt or mqttv3.1) instead of over raw TCP; over TLS when TLS is
	// set. See ws.go.
	WebSocket bool
	// UseIdentityAsUsername takes the client's user name from its TLS
	// certificate (see certIdentity) instead of from CONNECT, and
	// accepts the certificate in place of a password. A client without
	// a certificate is refused with Bad User Name or Password.
	UseIdentityAsUsername bool
	// Auth decides who may connect and what they may do; nil lets
	// everyone in and allows everything.
	Auth *Auth
	// NoDurableSessions keeps this listener's persistent sessions in
	// memory even when the server has a Store.
	NoDurableSessions bool
}

// listener is a listener being served and its connection count.
type listener struct {
	net.Listener
	orig     net.Listener // as given to ServeListener, for SetListenerLimits
	opts     ListenerOptions
	limits   atomic.Pointer[listenerLimits] // MaxConnections, MaxConnectionRate in force
	conns    atomic.Int64
	refusals sampledLog // log lines of refused connections
}

// DefaultOptions returns the options gatemq runs with when nothing is
// configured.
func DefaultOptions() Options {
	return Options{
		MaxPacketSize:  1 << 20,
		MaxKeepAlive:   65535,
		ConnectTimeout: 10 * time.Second,
		SessionExpiry:  2 * time.Hour,
		MaxInflight:    32,
		MaxQueued:      1000,
		MaxQoS:         2,
		TopicAliasMax:  10,
		SysInterval:    10 * time.Second,

		MaxSubscriptions: defaultMaxSubscriptions,
	}
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MaxPacketSize <= 0 {
		o.MaxPacketSize = 1 << 20
	}
	if o.MaxKeepAlive == 0 {
		o.MaxKeepAlive = 65535
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 32
	}
	if o.MaxInflight > 65535 {
		o.MaxInflight = 65535
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 1000
	}
	if o.MaxClientIDLen <= 0 {
		o.MaxClientIDLen = 65535
	}
	if o.MaxQoS > 2 {
		o.MaxQoS = 2
	}
	if o.Version == "" {
		o.Version = "gatemq"
	}
	if o.MaxTopicLevels <= 0 {
		o.MaxTopicLevels = defaultMaxTopicLevels
	}
	if o.MaxUserProperties <= 0 {
		o.MaxUserProperties = defaultMaxUserProperties
	}
	if o.AwaitRelTimeout <= 0 {
		o.AwaitRelTimeout = defaultAwaitRelTimeout
	}
	return o
}

// Server is an MQTT broker. Create it with New, give it listeners with
// Serve, stop it with Close.
type Server struct {
	opts     Options // as given to New; the live limits are in lim
	lim      atomic.Pointer[Limits]
	sysReset chan struct{} // SetLimits changed SysInterval
	log      *slog.Logger
	topics   topicTree
	retained retainStore
	sessions *session.Registry
	offline  *offline // nil without offline rules
	stats    stats
	status   *statusTracker // client online/offline records (status.go)
	acks     ackGroup       // acknowledgements a store commit made ready (conn_ack.go)
	started  time.Time
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	// connectMu serialises the session part of CONNECT handling, so that
	// two connections with one client identifier take over in order.
	connectMu sync.Mutex

	presets presetState // preset subscriptions (presets.go)

	// mu guards the fields below.
	mu        sync.Mutex
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	wills     map[string]*pendingWill           // delayed wills by client ID
	expiries  map[*session.Session]*expiryTimer // offline sessions' expiry timers
}

// New returns a Server that is ready to Serve.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	lim := opts.limits()
	s := &Server{
		opts:      opts,
		sysReset:  make(chan struct{}, 1),
		log:       opts.Logger,
		started:   time.Now(),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[*listener]struct{}),
		conns:     make(map[*conn]struct{}),
		wills:     make(map[string]*pendingWill),
		expiries:  make(map[*session.Session]*expiryTimer),
	}
	s.presets.rules = opts.PresetRules
	s.lim.Store(&lim)
	s.sessions = session.NewRegistry(lim.sessionOptions(s.countRelExpired))
	// Set before any goroutine starts: publishing reads it.
	if opts.Store != nil {
		s.offline = newOffline(opts.Offline)
	} else if len(opts.Offline) > 0 {
		s.log.Error("offline message rules ignored: they need the durable store")
	}
	s.goTracked(s.sysLoop) // idle while SysInterval is 0
	if opts.Store != nil {
		s.goTracked(s.durableLoop)
		if g, ok := opts.Store.(groupDoner); ok {
			g.GroupDone(s.acks.run)
		}
	}
	if s.offline != nil {
		s.goTracked(func() { s.every(time.Second, s.offlineTick) })
	}
	s.status = newStatusTracker(s)
	return s
}

// goTracked runs f in a goroutine that Close waits for.
func (s *Server) goTracked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// every calls f every d until the server closes.
func (s *Server) every(d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			f()
		case <-s.ctx.Done():
			return
		}
	}
}

// Serve accepts connections on ln until Close is called, then returns
// ErrServerClosed. Temporary accept errors are logged and retried with a
// backoff; Serve never exits silently.
func (s *Server) Serve(ln net.Listener) error {
	return s.ServeListener(ln, ListenerOptions{})
}

// ServeListener is Serve with per-listener options.
func (s *Server) ServeListener(netLn net.Listener, opts ListenerOptions) error {
	orig := netLn
	if opts.WebSocket {
		netLn = s.newWSListener(netLn, opts.TLS)
	}
	ln := &listener{Listener: netLn, orig: orig, opts: opts}
	ln.limits.Store(newListenerLimits(opts.MaxConnections, opts.MaxConnectionRate))
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			s.log.Warn("accept", logListener, ln.Addr().String(), logErr, err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		if c := s.admit(ln, nc); c != nil {
			go c.serve()
		}
	}
}

// admit registers a new connection, or closes it and returns nil when the
// server is closing or full, or the source is over its connection rate.
func (s *Server) admit(ln *listener, nc net.Conn) *conn {
	ll := ln.limits.Load()
	if !ll.rate.allow(nc.RemoteAddr(), time.Now().UnixNano()) {
		s.refuseConn(ln, nc, &s.stats.connRateLimited, "connection refused: rate limit", "max_connection_rate", ll.rate.rate)
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		nc.Close()
		return nil
	}
	if max := s.limits().MaxConnections; max > 0 && len(s.conns) >= max {
		s.refuseConn(ln, nc, &s.stats.connRefused, "connection refused: limit reached", "max_connections", max)
		return nil
	}
	if max := ll.maxConns; max > 0 && ln.conns.Load() >= int64(max) {
		s.refuseConn(ln, nc, &s.stats.connRefused, "connection refused: listener limit reached", "max_connections", max)
		return nil
	}
	ln.conns.Add(1)
	if ln.opts.TLS != nil && !ln.opts.WebSocket {
		// No I/O yet: the handshake runs in conn.serve.
		nc = tls.Server(nc, ln.opts.TLS)
	}
	c := newConn(s, nc)
	c.ln = ln
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return c
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close shuts the server down: it stops accepting, sends v5 clients
// DISCONNECT with Server shutting down (0x8B), closes every connection
// and waits for their goroutines until ctx is done. It is idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	for _, w := range s.wills {
		w.timer.Stop()
	}
	for _, e := range s.expiries {
		e.t.Stop()
	}
	s.mu.Unlock()
	// Last, once the connections have recorded their disconnects.
	defer s.status.close()
	s.cancel()
	for _, c := range conns {
		c.shutdown()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Past the deadline: close what is left, so that a writer stuck
		// on a client that does not read stops now, not at its write
		// timeout.
		for _, c := range conns {
			c.closeSocket()
		}
		return ctx.Err()
	}
}

// Stats returns a snapshot of the broker's counters.
func (s *Server) Stats() Stats {
	st := &s.stats
	return Stats{
		Uptime:             time.Since(s.started).Seconds(),
		ClientsConnected:   int(st.connected.Load()),
		ClientsMaximum:     int(st.maxConnected.Load()),
		Sessions:           s.sessions.Len(),
		Subscriptions:      s.topics.len(),
		Retained:           s.retained.len(),
		BytesReceived:      st.bytesRecv.Load(),
		BytesSent:          st.bytesSent.Load(),
		PacketsReceived:    st.packetsRecv.Load(),
		PacketsSent:        st.packetsSent.Load(),
		PublishReceived:    st.publishRecv.Load(),
		PublishSent:        st.publishSent.Load(),
		PublishDropped:     st.dropped.Load(),
		ConnectionsTotal:   st.connsTotal.Load(),
		PublishTooLargeOut: st.tooLarge.Load(),
		Limits:             st.limits(),
	}
}

// errorIsClosed reports whether err only says that the network
// connection went away, which is not worth more than a debug line.
func errorIsClosed(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}
