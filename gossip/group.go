package gossip

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/hashicorp/memberlist"
)

// Options configures a Group. The zero value of each field but Name
// means its default.
type Options struct {
	// Name is this gateway's name, unique in the group. Required.
	Name string
	// Bind is the IP:port the gossip listens on, TCP and UDP; port 0
	// takes a free port. Default "0.0.0.0:7946".
	Bind string
	// Advertise is the IP:port the others reach this gateway at.
	// Default: the bind address, or with 0.0.0.0 the host's first
	// private IPv4 address.
	Advertise string
	// Join lists other gateways, host:port, joined in the background
	// until one answers, and again whenever this gateway has no live
	// peer.
	Join []string
	// SecretKey, 16, 24 or 32 bytes, encrypts and authenticates the
	// gossip (AES-GCM); nil sends it in clear.
	SecretKey []byte
	// Site and Version are told to the others in this node's metadata.
	Site    string
	Version string
	// GossipInterval is how often news is passed on. Default 200ms.
	GossipInterval time.Duration
	// ProbeInterval is how often one other member is probed. Default 1s.
	ProbeInterval time.Duration
	// ReconnectInterval is how often dead members, and the seeds while
	// this gateway has no live peer, are asked to join. Default 30s.
	ReconnectInterval time.Duration
	// Logger receives membership events at info level and memberlist's
	// own lines at debug level. Default: discard.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultBind              = "0.0.0.0:7946"
	defaultGossipInterval    = 200 * time.Millisecond
	defaultProbeInterval     = time.Second
	defaultReconnectInterval = 30 * time.Second

	// tcpTimeout bounds memberlist's TCP exchanges (joins, push/pull,
	// fallback pings), and so how long Shutdown may wait for a join in
	// progress; on a site's LAN they take milliseconds.
	tcpTimeout = 5 * time.Second
	// firstRetry is the wait before joining the seeds again after no
	// seed answered; it doubles up to ReconnectInterval.
	firstRetry = 500 * time.Millisecond
)

// Group is this gateway's membership in the peer group. Create it with
// Start; end it with Leave (the others see "left") then Shutdown, or
// Shutdown alone (they see "dead"). Its methods are safe for concurrent
// use.
type Group struct {
	opts   Options
	log    *slog.Logger
	ml     *memberlist.Memberlist
	events chan event
	now    func() time.Time // time.Now, but in tests of the member table

	addr      string               // this node's gossip address, host:port
	leaving   atomic.Bool          // set by Leave, under life: the metadata says so
	dropped   atomic.Uint64        // events not logged: the queue was full
	conflicts map[string]time.Time // name conflicts logged, and when; logEvents' own
	stopJoin  context.CancelFunc
	stopLog   context.CancelFunc
	wg        sync.WaitGroup // logEvents and joinLoop

	// mu guards members.
	mu      sync.Mutex
	members map[string]*Member

	// life serialises Leave and Shutdown (memberlist panics on a Leave
	// after Shutdown) and guards closed and the setting of leaving. It
	// is held across those two memberlist calls, and nowhere else.
	life   sync.Mutex
	closed bool
}

// Start creates this gateway's memberlist node, listening on Bind, and
// joins the seeds of Options.Join in the background. It returns once the
// node listens; an error means it does not (an invalid name or address,
// a port in use, a key of the wrong size).
func Start(opts Options) (*Group, error) {
	if opts.Bind == "" {
		opts.Bind = DefaultBind
	}
	opts.GossipInterval = cmp.Or(opts.GossipInterval, defaultGossipInterval)
	opts.ProbeInterval = cmp.Or(opts.ProbeInterval, defaultProbeInterval)
	opts.ReconnectInterval = cmp.Or(opts.ReconnectInterval, defaultReconnectInterval)
	if opts.Logger == nil {
		opts.Logger = discard
	}
	if err := checkName(opts.Name); err != nil {
		return nil, fmt.Errorf("start peer group: %w", err)
	}
	mc := memberlist.DefaultLANConfig()
	var err error
	mc.Name = opts.Name
	if mc.BindAddr, mc.BindPort, err = splitIPPort(opts.Bind); err != nil {
		return nil, fmt.Errorf("start peer group: bind: %w", err)
	}
	if opts.Advertise != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = splitIPPort(opts.Advertise); err != nil {
			return nil, fmt.Errorf("start peer group: advertise: %w", err)
		}
	}
	mc.GossipInterval = opts.GossipInterval
	mc.ProbeInterval = opts.ProbeInterval
	// A probe must time out within its interval; 500ms, memberlist's
	// LAN default, unless the interval is shorter.
	mc.ProbeTimeout = min(mc.ProbeTimeout, opts.ProbeInterval/2)
	mc.TCPTimeout = tcpTimeout
	// A dead member may come back at once from another address: a
	// gateway restarted with a new DHCP lease. (memberlist's default
	// refuses it, as a name conflict, until it forgets the dead node
	// 30s later.) Names are unique by configuration.
	mc.DeadNodeReclaimTime = time.Nanosecond
	mc.SecretKey = opts.SecretKey

	g := &Group{
		opts:      opts,
		log:       opts.Logger,
		events:    make(chan event, eventQueue),
		now:       time.Now,
		members:   make(map[string]*Member),
		conflicts: make(map[string]time.Time),
	}
	mc.Delegate = (*delegate)(g)
	mc.Events = (*events)(g)
	mc.Ping = (*pings)(g)
	mc.Conflict = (*conflicts)(g)
	mc.Logger = log.New((*mlLog)(g), "", 0)

	logCtx, stopLog := context.WithCancel(context.Background())
	g.stopLog = stopLog
	g.wg.Add(1)
	go g.logEvents(logCtx)
	ml, err := memberlist.Create(mc)
	if err != nil {
		stopLog()
		g.wg.Wait()
		return nil, fmt.Errorf("start peer group: %w", err)
	}
	g.ml = ml
	g.addr = ml.LocalNode().Address() // before any peer can change the node
	g.log.Info("peer group started", logName, opts.Name, logAddress, g.addr, logSeeds, opts.Join,
		logEncrypt, opts.SecretKey != nil, logInterval, opts.ProbeInterval)
	joinCtx, stopJoin := context.WithCancel(context.Background())
	g.stopJoin = stopJoin
	g.wg.Add(1)
	go g.joinLoop(joinCtx)
	return g, nil
}

// Leave tells the group this gateway leaves, and stops rejoining; the
// others then list it as "left", not "dead". It first says so in its
// metadata, since memberlist does not tell the others which of the two
// it is (see events.NotifyLeave), then leaves; each step waits up to
// half of timeout for the news to go out. Call Shutdown afterwards. It
// is idempotent; after Shutdown it returns ErrClosed.
func (g *Group) Leave(timeout time.Duration) error {
	g.life.Lock()
	defer g.life.Unlock()
	if g.closed {
		return ErrClosed
	}
	if g.leaving.Load() {
		return nil
	}
	g.stopJoin()
	g.leaving.Store(true)
	if err := g.ml.UpdateNode(timeout / 2); err != nil {
		g.log.Warn("leave: peers may see this gateway fail rather than leave", logErr, err)
	}
	if err := g.ml.Leave(timeout / 2); err != nil {
		return fmt.Errorf("leave peer group: %w", err)
	}
	g.log.Info("left the peer group")
	return nil
}

// Shutdown stops the node at once, without leaving (after Leave, or to
// look like a crash), and waits for the group's goroutines: a join in
// progress may take up to 5s to give up. It is idempotent.
func (g *Group) Shutdown() error {
	g.life.Lock()
	defer g.life.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	g.stopJoin()
	err := g.ml.Shutdown()
	g.stopLog()
	g.wg.Wait()
	if err != nil {
		return fmt.Errorf("shut down peer group: %w", err)
	}
	return nil
}

// LocalAddr returns the address this gateway's gossip is reached at.
func (g *Group) LocalAddr() string { return g.addr }

// joinLoop joins the seeds until one answers, then every
// ReconnectInterval asks the dead members (and the seeds, while no peer
// is alive) to join again, until ctx is done. Each address is tried on
// its own, so that ctx is checked between them.
func (g *Group) joinLoop(ctx context.Context) {
	defer g.wg.Done()
	wait := time.Duration(0)
	retry := firstRetry
	failedOnce := false
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		g.mu.Lock()
		alone := g.livePeersLocked() == 0
		targets := g.deadAddrsLocked()
		g.mu.Unlock()
		if alone {
			targets = append(append([]string(nil), g.opts.Join...), targets...)
		}
		var lastErr error
		for _, addr := range targets {
			if ctx.Err() != nil {
				return
			}
			if _, err := g.ml.Join([]string{addr}); err != nil {
				lastErr = err
				g.log.Debug("join", logPeer, addr, logErr, err)
			}
		}
		g.mu.Lock()
		peers := g.livePeersLocked()
		g.mu.Unlock()
		switch {
		case !alone || len(targets) == 0:
			wait = g.opts.ReconnectInterval
		case peers > 0:
			g.log.Info("joined the peer group", logPeers, peers)
			wait, retry, failedOnce = g.opts.ReconnectInterval, firstRetry, false
		default:
			if !failedOnce {
				g.log.Info("no peer answers yet: joining again in the background", logSeeds, g.opts.Join, logErr, lastErr)
				failedOnce = true
			}
			wait, retry = retry, min(2*retry, g.opts.ReconnectInterval)
		}
	}
}

// delegate is the group's memberlist.Delegate: it gives the node's
// metadata. The group sends no messages or state of its own yet.
type delegate Group

func (d *delegate) NodeMeta(limit int) []byte {
	b, err := meta{Site: d.opts.Site, Version: d.opts.Version, Leaving: d.leaving.Load()}.encode(limit)
	if err != nil {
		d.log.Warn("node metadata not sent", logErr, err)
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// checkName checks what the group needs of a node name: not empty, and
// no spaces or control characters, which would make memberlist's log
// lines ambiguous (suspectName). conf.CheckPeerName is stricter.
func checkName(name string) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		return fmt.Errorf("invalid name %q: want a non-empty name without spaces", name)
	}
	return nil
}

// splitIPPort splits an IP:port.
func splitIPPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q is not an IP address", host)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("invalid port %q", port)
	}
	return host, int(p), nil
}
