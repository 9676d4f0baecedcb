package broker

import (
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gatemq/boltstore"
	"gatemq/broker/packet"
	"gatemq/session"
)

// Client online/offline status (issue 4, point 1): for every client ID a
// record of its last connection, and the $SYS events
// $SYS/brokers/{site}/clients/{client_id}/connected and .../disconnected.
//
// The connection goroutines only change memory (statusTracker.connected
// and .disconnected take statusTracker.mu for a few map operations); the
// tracker's own goroutine publishes the events and writes the records
// that changed since its last write, one client's changes coalesced, in
// one store transaction, with at most one write in flight. CONNACK never
// waits for any of it.
//
// With a store (*boltstore.Store) the records are in meta.db and survive
// restarts: Restore turns the records left online by a crash offline at
// the restart time. Without one they are kept in memory (memStatus) and
// the site is named "local".

// StatusFilter selects client status records by state.
type StatusFilter uint8

const (
	StatusAll StatusFilter = iota
	StatusOnline
	StatusOffline
)

func (f StatusFilter) String() string {
	switch f {
	case StatusAll:
		return "all"
	case StatusOnline:
		return "online"
	case StatusOffline:
		return "offline"
	}
	return "invalid"
}

// localSite names the site of a broker without a store.
const localSite = "local"

// SiteName returns how a status record's site is shown and named in the
// $SYS topics: the store's site ID in hex, or "local" for a broker
// without a store (whose records have the zero SiteID).
func SiteName(id boltstore.SiteID) string {
	if id == (boltstore.SiteID{}) {
		return localSite
	}
	return id.String()
}

// statusRestartReason is the reason of the records a restart turns
// offline: the broker stopped without recording their disconnect.
const statusRestartReason = "broker-restart"

const (
	// maxStatusEvents bounds the $SYS events waiting to be published;
	// beyond it new ones are dropped, counted and logged.
	maxStatusEvents = 4096
	// maxMemStatus bounds the records kept without a store.
	maxMemStatus = 100_000
	// statusRetry is how long a failed status write waits before the
	// next attempt.
	statusRetry = time.Second
	// statusPace is the least time between two status writes: the
	// records of every client that connected or left meanwhile go in one
	// transaction. Written as they came, 5,000 clients connecting at
	// 2,000/s took about 1,250 commits, whose pages (the garbage of
	// reading and rewriting them) were half of all the memory the
	// broker allocated, and flash writes for each.
	statusPace = 100 * time.Millisecond
)

// statusPruneEvery is how often the records of clients offline for
// longer than Options.StatusRetention are deleted (and once at start).
// Tests shorten it.
var statusPruneEvery = time.Hour

// statusStore is where status records are kept: *boltstore.Store, or
// memStatus without a store. PutStatus's done may run on another
// goroutine and must not block.
type statusStore interface {
	PutStatus(recs []boltstore.ClientStatus, done func(error))
	PruneStatus(before time.Time) (int, error)
	Status(clientID string) (boltstore.ClientStatus, bool, error)
	Statuses(fn func(boltstore.ClientStatus) error, bad func(clientID string, err error)) error
}

// durableStatus is a statusStore on disk, with a site.
type durableStatus interface {
	statusStore
	Site() boltstore.SiteID
	MarkOffline(site boltstore.SiteID, at time.Time, reason string) (int, error)
}

var _ durableStatus = (*boltstore.Store)(nil)

// statusTracker keeps the client status records and publishes the
// connect and disconnect events. Its goroutine (run) is not tracked by
// Server.wg: it must outlive the connections, whose cleanup records
// their disconnects, so Server.Close stops it last.
type statusTracker struct {
	srv   *Server
	log   *slog.Logger
	store statusStore
	site  boltstore.SiteID // zero without a store

	wake    chan struct{} // capacity 1: something to publish or write
	quit    chan struct{}
	stopped chan struct{}
	once    sync.Once
	pruning sync.WaitGroup // a PruneStatus in progress

	// mu guards the fields below; it is a leaf lock.
	mu      sync.Mutex
	online  map[string]onlineStatus           // connected clients by client ID
	dirty   map[string]boltstore.ClientStatus // changed since the last write was handed over
	writing map[string]boltstore.ClientStatus // the write in flight
	events  []statusEvent                     // to publish, oldest first
	dropped int                               // events dropped since the last publish
}

// onlineStatus is a connected client's connection (a disconnect of an
// older connection must not end its record) and what its record holds
// besides the connection's fields: kept small, as there is one per
// connected client.
type onlineStatus struct {
	owner      *conn
	at         int64 // OnlineAt, Unix ms
	cleanStart bool
}

// record is the client's status record while connected.
func (e onlineStatus) record(site boltstore.SiteID) boltstore.ClientStatus {
	c := e.owner
	return boltstore.ClientStatus{ClientID: c.clientID, Online: true, OnlineAt: time.UnixMilli(e.at), Site: site,
		Remote: c.remote, Protocol: byte(c.version), Username: c.username, KeepAlive: c.keepAlive, CleanStart: e.cleanStart}
}

// statusEvent is a connect or disconnect to publish.
type statusEvent struct {
	rec boltstore.ClientStatus // Online: connected, else disconnected
}

func newStatusTracker(s *Server) *statusTracker {
	t := &statusTracker{
		srv:     s,
		log:     s.log,
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
		online:  make(map[string]onlineStatus),
		dirty:   make(map[string]boltstore.ClientStatus),
	}
	if ds, ok := s.opts.Store.(durableStatus); ok {
		t.store, t.site = ds, ds.Site()
	} else {
		t.store = &memStatus{recs: make(map[string]boltstore.ClientStatus)}
	}
	go t.run()
	return t
}

// connected records that c has connected (its CONNACK is queued). It
// does not block.
func (t *statusTracker) connected(c *conn, cleanStart bool) {
	e := onlineStatus{owner: c, at: time.Now().UnixMilli(), cleanStart: cleanStart}
	t.mu.Lock()
	t.online[c.clientID] = e
	t.changedLocked(e.record(t.site))
	t.mu.Unlock()
	t.signal()
}

// disconnected records that c's connection ended for why, unless a newer
// connection of its client ID is the one recorded. It does not block.
func (t *statusTracker) disconnected(c *conn, why closeReason) {
	t.mu.Lock()
	e, ok := t.online[c.clientID]
	if !ok || e.owner != c {
		t.mu.Unlock()
		return
	}
	delete(t.online, c.clientID)
	rec := e.record(t.site)
	rec.Online, rec.OfflineAt, rec.Reason = false, nowMilli(), why.String()
	t.changedLocked(rec)
	t.mu.Unlock()
	t.signal()
}

// changedLocked marks rec to be written and its event to be published.
func (t *statusTracker) changedLocked(rec boltstore.ClientStatus) {
	t.dirty[rec.ClientID] = rec
	if len(t.events) >= maxStatusEvents {
		t.dropped++
		return
	}
	t.events = append(t.events, statusEvent{rec: rec})
}

// nowMilli is the time now as the store keeps it, in milliseconds: a
// record reads the same from memory and from the store.
func nowMilli() time.Time { return time.UnixMilli(time.Now().UnixMilli()) }

func (t *statusTracker) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// close publishes and writes what is pending, then stops the goroutine.
// It is idempotent.
func (t *statusTracker) close() {
	t.once.Do(func() { close(t.quit) })
	<-t.stopped
	t.pruning.Wait()
}

// prune deletes, in a goroutine of its own, the records of clients
// offline for longer than the retention, unless a prune is running.
func (t *statusTracker) prune(running *atomic.Bool) {
	retention := t.srv.opts.StatusRetention
	if retention <= 0 || !running.CompareAndSwap(false, true) {
		return
	}
	t.pruning.Add(1)
	go func() {
		defer t.pruning.Done()
		defer running.Store(false)
		n, err := t.store.PruneStatus(time.Now().Add(-retention))
		switch {
		case err != nil:
			t.log.Error("delete old client status records", logErr, err)
		case n > 0:
			t.log.Info("deleted the status records of clients offline too long", "records", n, "retention", retention.String())
		}
	}()
}

// run publishes events and writes records until close.
func (t *statusTracker) run() {
	defer close(t.stopped)
	done := make(chan error, 1) // one write in flight at most
	inflight := false
	var retry, paced <-chan time.Time
	var lastWrite time.Time
	var pruning atomic.Bool
	pruneTick := time.NewTicker(statusPruneEvery)
	defer pruneTick.Stop()
	t.prune(&pruning)
	for {
		select {
		case <-pruneTick.C:
			t.prune(&pruning)
			continue
		case <-t.wake:
		case err := <-done:
			inflight = false
			if t.committed(err) {
				retry = time.After(statusRetry)
			}
		case <-retry:
			retry = nil
		case <-paced:
			paced = nil
		case <-t.quit:
			t.publishEvents()
			if inflight {
				t.committed(<-done)
			}
			if t.write(done) {
				t.committed(<-done)
			}
			return
		}
		t.publishEvents()
		if inflight || retry != nil || paced != nil {
			continue
		}
		if wait := statusPace - time.Since(lastWrite); wait > 0 {
			paced = time.After(wait)
			continue
		}
		if inflight = t.write(done); inflight {
			lastWrite = time.Now()
		}
	}
}

// write hands the changed records to the store, done to receive the
// result; it reports whether there were any.
func (t *statusTracker) write(done chan<- error) bool {
	t.mu.Lock()
	if len(t.dirty) == 0 {
		t.mu.Unlock()
		return false
	}
	t.writing = t.dirty
	t.dirty = make(map[string]boltstore.ClientStatus, len(t.writing))
	recs := make([]boltstore.ClientStatus, 0, len(t.writing))
	for _, r := range t.writing {
		recs = append(recs, r)
	}
	t.mu.Unlock()
	// In key order: bbolt inserts sorted keys with fewer page splits.
	sort.Slice(recs, func(i, j int) bool { return recs[i].ClientID < recs[j].ClientID })
	t.store.PutStatus(recs, func(err error) { done <- err })
	return true
}

// committed ends the write in flight. A failed write's records are
// written again later, unless they changed meanwhile; it reports
// whether the write failed.
func (t *statusTracker) committed(err error) bool {
	t.mu.Lock()
	if err != nil {
		for id, r := range t.writing {
			if _, ok := t.dirty[id]; !ok {
				t.dirty[id] = r
			}
		}
	}
	n := len(t.writing)
	t.writing = nil
	t.mu.Unlock()
	if err != nil {
		t.log.Error("client status not stored; retrying", "records", n, logErr, err)
		return true
	}
	return false
}

// publishEvents publishes the pending events through the normal routing,
// so $SYS subscribers and their ACLs apply.
func (t *statusTracker) publishEvents() {
	t.mu.Lock()
	evs, dropped := t.events, t.dropped
	t.events, t.dropped = nil, 0
	t.mu.Unlock()
	if dropped > 0 {
		t.log.Warn("client status events dropped: too many waiting", "dropped", dropped)
	}
	for _, e := range evs {
		if m := e.message(); m != nil {
			t.srv.publish(m)
		}
	}
}

// statusPayload is the JSON body of a connected or disconnected event.
type statusPayload struct {
	ClientID         string `json:"client_id"`
	Username         string `json:"username"`
	Remote           string `json:"remote"`
	ProtocolVersion  string `json:"protocol_version"`
	KeepAlive        uint16 `json:"keepalive"`
	CleanStart       bool   `json:"clean_start"`
	Site             string `json:"site"`
	ConnectedAt      string `json:"connected_at"`
	ConnectedAtMs    int64  `json:"connected_at_ms"`
	DisconnectedAt   string `json:"disconnected_at,omitempty"`
	DisconnectedAtMs int64  `json:"disconnected_at_ms,omitempty"`
	Reason           string `json:"reason,omitempty"`
}

// rfc3339Milli is RFC 3339 with milliseconds.
const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"

// message returns the event's $SYS message, QoS 0 and not retained, or
// nil when its client ID cannot be a topic level (it holds a wildcard, or
// the topic would be too long): no such event is published.
func (e statusEvent) message() *session.Message {
	r := e.rec
	suffix := "/disconnected"
	if r.Online {
		suffix = "/connected"
	}
	topic := "$SYS/brokers/" + SiteName(r.Site) + "/clients/" + r.ClientID + suffix
	if len(topic) > 65535 || packet.ValidTopicName(topic) != nil {
		return nil
	}
	p := statusPayload{ClientID: r.ClientID, Username: r.Username, Remote: r.Remote,
		ProtocolVersion: packet.Version(r.Protocol).String(), KeepAlive: r.KeepAlive, CleanStart: r.CleanStart,
		Site: SiteName(r.Site), ConnectedAt: r.OnlineAt.UTC().Format(rfc3339Milli), ConnectedAtMs: r.OnlineAt.UnixMilli()}
	if !r.Online {
		p.DisconnectedAt, p.DisconnectedAtMs = r.OfflineAt.UTC().Format(rfc3339Milli), r.OfflineAt.UnixMilli()
		p.Reason = r.Reason
	}
	b, _ := json.Marshal(p) // strings and numbers only: cannot fail
	return &session.Message{Topic: topic, Payload: b}
}

// restore turns the records left online at this site by a broker that
// stopped without recording their disconnect (a crash, kill -9) offline
// at now. Without a store there is nothing to restore.
func (t *statusTracker) restore(now time.Time) error {
	ds, ok := t.store.(durableStatus)
	if !ok {
		return nil
	}
	n, err := ds.MarkOffline(t.site, now, statusRestartReason)
	if err != nil {
		return err
	}
	if n > 0 {
		t.log.Info("clients connected when the broker stopped marked offline", "clients", n)
	}
	return nil
}

// get returns clientID's record: what memory holds is newer than the
// store.
func (t *statusTracker) get(clientID string) (boltstore.ClientStatus, bool, error) {
	t.mu.Lock()
	e, online := t.online[clientID]
	r, dirty := t.dirty[clientID]
	w, writing := t.writing[clientID]
	t.mu.Unlock()
	switch {
	case online:
		return e.record(t.site), true, nil
	case dirty:
		return r, true, nil
	case writing:
		return w, true, nil
	}
	return t.store.Status(clientID)
}

// list returns the records of f by client ID: the store's, overlaid with
// the newer ones in memory. Online records come from memory alone.
func (t *statusTracker) list(f StatusFilter) ([]boltstore.ClientStatus, error) {
	t.mu.Lock()
	newer := make(map[string]boltstore.ClientStatus, len(t.online)+len(t.dirty)+len(t.writing))
	if f != StatusOnline {
		for id, r := range t.writing {
			newer[id] = r
		}
		for id, r := range t.dirty {
			newer[id] = r
		}
	}
	for id, e := range t.online {
		newer[id] = e.record(t.site)
	}
	t.mu.Unlock()
	var out []boltstore.ClientStatus
	keep := func(r boltstore.ClientStatus) {
		if f == StatusAll || r.Online == (f == StatusOnline) {
			out = append(out, r)
		}
	}
	if f != StatusOnline {
		err := t.store.Statuses(func(r boltstore.ClientStatus) error {
			if n, ok := newer[r.ClientID]; ok {
				r = n
				delete(newer, r.ClientID)
			}
			keep(r)
			return nil
		}, func(id string, err error) {
			t.log.Error("corrupt client status record skipped", logClientID, id, logErr, err)
		})
		if err != nil {
			return nil, err
		}
	}
	for _, r := range newer {
		keep(r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out, nil
}

// ClientStatuses returns the status records of f, by client ID: every
// client ID that has connected (with a store, since the store was made;
// without, while the broker runs). It is safe for concurrent use.
func (s *Server) ClientStatuses(f StatusFilter) ([]boltstore.ClientStatus, error) {
	return s.status.list(f)
}

// ClientStatus returns the status record of clientID and whether there
// is one. It is safe for concurrent use.
func (s *Server) ClientStatus(clientID string) (boltstore.ClientStatus, bool, error) {
	return s.status.get(clientID)
}

// ParseStatusFilter parses "online", "offline", or "" or "all" for every
// record, and reports whether s was one of them.
func ParseStatusFilter(s string) (StatusFilter, bool) {
	switch s {
	case "", "all":
		return StatusAll, true
	case "online":
		return StatusOnline, true
	case "offline":
		return StatusOffline, true
	}
	return StatusAll, false
}
