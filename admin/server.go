package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"gatemq/boltstore"
	"gatemq/broker"
	"gatemq/gossip"
)

// Broker is what the API needs of the broker; *broker.Server implements
// it. Every method must be safe for concurrent use and return values the
// caller may keep; Kick may block up to its timeout.
type Broker interface {
	ClientStatuses(f broker.StatusFilter) ([]boltstore.ClientStatus, error)
	ClientStatus(clientID string) (boltstore.ClientStatus, bool, error)
	Sessions() []broker.SessionInfo
	Session(clientID string) (broker.SessionInfo, []broker.SubscriptionInfo, bool)
	RetainedMessages() []broker.RetainedInfo
	Kick(clientID string, timeout time.Duration) bool
	Stats() broker.Stats
	QoSStats() broker.QoSStats
	SessionCounts() (online, offline int)
	Listening() int
}

var _ Broker = (*broker.Server)(nil)

// Store is what the API needs of the durable store; *boltstore.Store
// implements it. ObserveCommits' callback runs on the store's writer
// goroutine and does not block.
type Store interface {
	Info() boltstore.Info
	Stats() boltstore.Stats
	DiskStats() boltstore.DiskStats
	ObserveCommits(fn func(boltstore.Commit))
	ExportAll(w io.Writer, more ...boltstore.ExportFile) (boltstore.ExportStats, error)
}

var _ Store = (*boltstore.Store)(nil)

// Peers is what the API needs of the peer group; *gossip.Group
// implements it. Members must be safe for concurrent use and return a
// slice the caller may keep.
type Peers interface {
	Members() []gossip.Member
}

var _ Peers = (*gossip.Group)(nil)

// Options configures a Server.
type Options struct {
	// Broker answers the API's questions. Required.
	Broker Broker
	// Store is the durable store; nil when there is none (GET /api/v1/ds
	// then answers 404 and the store metrics are absent).
	Store Store
	// Presets serves /api/v1/presets (presets.go); nil answers 404.
	Presets PresetManager
	// Retained serves the retained-message filter, get and delete
	// (retained.go); nil answers 404 to them.
	Retained RetainedEditor
	// Archive is the message archive; nil when there is none (GET
	// /api/v1/messages then answers 404 and its metrics are absent).
	Archive Archive
	// Token is the bearer token requests on TCP listeners must carry.
	// ServeTCP refuses to start without one.
	Token string
	// Logger receives the server's log lines. Default: discard.
	Logger *slog.Logger
	// Peers is the peer group; nil when there is none (GET
	// /api/v1/peers then answers 404 and gatemq_peer_members is absent).
	Peers Peers
	// DataDir is the broker's data directory, absolute, told in
	// /healthz: the commands that find a broker on a socket outside it
	// check that it serves the data directory they were given.
	DataDir string
}

// Server is the admin API. Create it with New, give it listeners with
// ListenUnix and ServeTCP, stop it with Close. It is safe for concurrent
// use.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	mux     *http.ServeMux

	// mu guards servers and closed.
	mu      sync.Mutex
	servers []*http.Server
	closed  bool
	wg      sync.WaitGroup
}

// New returns a Server. With a Store, it starts observing the store's
// commits for the metrics.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	s.metrics = newMetrics(opts.Broker, opts.Store, opts.Peers, opts.Archive)
	s.routes()
	return s
}

// Handler returns the API's handler, without the token check.
func (s *Server) Handler() http.Handler { return s.mux }

// ListenUnix listens on a Unix socket at path with mode 0600 and serves
// the API on it in a new goroutine. A stale socket file left by a crash
// is removed; a socket a live process answers on is an error.
func (s *Server) ListenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another process answers on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	// Not the umask, which is per process: the socket is 0600 from the
	// chmod on. Its directory (data_dir, 0700, or /run/gatemq) keeps
	// others out meanwhile.
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := s.serve(ln, s.mux); err != nil {
		return nil, err
	}
	return ln, nil
}

// ServeTCP listens on addr, which the caller has checked is loopback, and
// serves the API there in a new goroutine; every request must carry
// "Authorization: Bearer TOKEN".
func (s *Server) ServeTCP(addr string) (net.Listener, error) {
	if s.opts.Token == "" {
		return nil, ErrNoToken
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := s.serve(ln, requireToken(s.opts.Token, s.mux)); err != nil {
		return nil, err
	}
	return ln, nil
}

func (s *Server) serve(ln net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ln.Close()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin API stopped", logAddress, ln.Addr().String(), logErr, err)
		}
	}()
	return nil
}

// Close stops every listener and waits for requests in progress until ctx
// is done; Unix socket files are removed. It is idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	servers := s.servers
	s.servers, s.closed = nil, true
	s.mu.Unlock()
	var errs []error
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	if s.opts.Store != nil {
		s.opts.Store.ObserveCommits(nil)
	}
	return errors.Join(errs...)
}

// requireToken wraps h with the bearer token check, in constant time.
func requireToken(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatemq"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ReadToken reads a token file: its first line, trimmed.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("read token: %s: empty", path)
	}
	return tok, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
