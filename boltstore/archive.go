package boltstore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The message archive keeps every message published on the topics of its
// rules, for operators to list and read back; see "Archive" in the
// package documentation for the layout.

// ArchiveRule is one archive rule: the topics it takes (its Filter, as
// ArchiveOptions.Match decides), how long and how much of them to keep.
// The filter names the rule's directory: a rule whose retention or cap
// changes keeps its messages.
type ArchiveRule struct {
	Filter string
	// Retention is how long a message is kept. Default 24h.
	Retention time.Duration
	// MaxBytes caps the size of the rule's files; the oldest messages
	// go first. 0 means no cap.
	MaxBytes int64
}

// ArchiveOptions configures an Archive. The zero value means defaults,
// with no rules.
type ArchiveOptions struct {
	// Rules are the archive's rules. A message matching several is
	// stored once, under the one with the longest retention (the first
	// of those in Rules on a tie).
	Rules []ArchiveRule
	// Match reports whether topic matches a rule's filter. Required with
	// Rules; the store knows nothing of topic filters.
	Match func(filter, topic string) bool
	// BatchSize closes a write batch at this many messages. Default 4096.
	BatchSize int
	// FlushInterval closes a write batch this long after its first
	// message. Default 10ms.
	FlushInterval time.Duration
	// Logger receives the archive's log lines. Default: discard.
	Logger *slog.Logger
	// Now returns the current time; tests move it. Default time.Now.
	Now func() time.Time
	// OpenFile opens the archive's files; tests use it to inject faults.
	// Default os.OpenFile.
	OpenFile func(string, int, os.FileMode) (*os.File, error)
	// ReadOnly opens an existing archive for reading only (the
	// command-line tools): nothing is created, written or dropped.
	ReadOnly bool
}

func (o *ArchiveOptions) withDefaults() ArchiveOptions {
	var d ArchiveOptions
	if o != nil {
		d = *o
	}
	d.Rules = slices.Clone(d.Rules)
	for i := range d.Rules {
		if d.Rules[i].Retention <= 0 {
			d.Rules[i].Retention = 24 * time.Hour
		}
	}
	if d.BatchSize <= 0 {
		d.BatchSize = 4096
	}
	if d.FlushInterval <= 0 {
		d.FlushInterval = 10 * time.Millisecond
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}

// Buckets and keys of an archive segment file.
var (
	bucketArchInfo   = []byte("info")
	bucketArchMsgs   = []byte("m")
	bucketArchTopics = []byte("t")
	keyArchFilter    = []byte("filter")
	keyArchRetention = []byte("retention")
	keyArchMaxBytes  = []byte("max_bytes")
	keyArchCount     = []byte("count")
)

const (
	// minSegmentBytes is the least size at which a segment is closed
	// for a rule with a cap: a sixteenth of the cap, but no less.
	minSegmentBytes = 64 << 10
	// segmentsPerRetention is how many segments a rule's retention is
	// cut into by time, so that an expired one is about a sixteenth of
	// the rule's messages (and of its cap).
	segmentsPerRetention = 16
	// archiveMaintenance is how often retention runs while no message
	// comes.
	archiveMaintenance = time.Minute
	// maxQueuedBytes bounds the memory of the messages waiting for the
	// writer (queued or in the batch being committed); Add waits beyond
	// it. A message larger than it goes alone.
	maxQueuedBytes = 16 << 20
	// reqOverhead is what an archReq costs beyond its bytes.
	reqOverhead = 128
)

// Archive is the message archive. Its methods are safe for concurrent
// use. Open it with OpenArchive.
type Archive struct {
	dir  string
	opts ArchiveOptions
	log  *slog.Logger

	// order lists the rules by retention, longest first: Rule takes the
	// first match.
	order  []int
	byRule []*archLog // rule index -> its log

	// mu guards logs, each log's segs and each segment's last and
	// count, and closed. The writer goroutine changes them with mu held
	// for memory work only; readers copy what they need under RLock.
	mu     sync.RWMutex
	logs   []*archLog // configured rules' logs, then logs no rule names any more
	closed bool

	b  *batcher[archReq]
	wg sync.WaitGroup

	// qmu guards queued, the bytes of the messages added and not yet
	// committed; qcond wakes an Add waiting for them to fall.
	qmu    sync.Mutex
	qcond  *sync.Cond
	queued int
	lastID uint64      // the writer's: IDs only grow
	bw     blockWriter // the writer's, reused from commit to commit

	written   atomic.Uint64 // messages committed
	failed    atomic.Uint64 // messages lost to failed commits
	capped    atomic.Uint64 // messages dropped by a rule's MaxBytes
	expired   atomic.Uint64 // messages dropped by retention
	corrupt   atomic.Uint64 // records that failed their checksum when read
	commits   atomic.Uint64
	lastBatch atomic.Int64
}

// archLog is one rule's messages: its directory and segments.
type archLog struct {
	filter    string
	dir       string
	rule      int // index in ArchiveOptions.Rules; -1 when no rule names it any more
	retention time.Duration
	maxBytes  int64
	segs      []*archSeg // by ascending first ID
}

// archSeg is one segment file of a rule.
type archSeg struct {
	first uint64 // ID of its first message: its name
	last  uint64 // ID of its last message, 0 while empty
	count uint64 // messages in it
	size  int64  // bytes of the file, refreshed by the writer
	path  string
	db    *bolt.DB
}

// archReq is a message, or a barrier (rule -1), on its way to the writer.
type archReq struct {
	rule          int
	t             int64 // unix ns when added
	topic         string
	meta, payload []byte
	done          func(uint64, error)
}

// queuedBytes is what a message counts against maxQueuedBytes.
func queuedBytes(topic string, meta, payload []byte) int {
	return reqOverhead + len(topic) + len(meta) + len(payload)
}

// OpenArchive opens or creates the archive in dir. Every segment is
// opened, so on return everything committed before a crash is readable;
// retention and caps are applied at once.
func OpenArchive(dir string, opts *ArchiveOptions) (*Archive, error) {
	o := opts.withDefaults()
	if len(o.Rules) > 0 && o.Match == nil {
		return nil, errors.New("open archive: rules without a Match function")
	}
	if o.ReadOnly {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("no archive in %s: %w", dir, err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	a := &Archive{dir: dir, opts: o, log: o.Logger}
	a.qcond = sync.NewCond(&a.qmu)
	byDir := make(map[string]*archLog)
	for i, r := range o.Rules {
		l := &archLog{filter: r.Filter, dir: filepath.Join(dir, ruleDirName(r.Filter)), rule: i,
			retention: r.Retention, maxBytes: r.MaxBytes}
		if byDir[l.dir] != nil {
			return nil, fmt.Errorf("open archive: rule %q given twice", r.Filter)
		}
		byDir[l.dir] = l
		a.logs = append(a.logs, l)
		a.byRule = append(a.byRule, l)
		a.order = append(a.order, i)
	}
	sort.SliceStable(a.order, func(i, j int) bool { return o.Rules[a.order[i]].Retention > o.Rules[a.order[j]].Retention })

	names, err := filepath.Glob(filepath.Join(dir, "r-*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		l := byDir[name]
		if l == nil {
			l = &archLog{dir: name, rule: -1}
		}
		if err := a.openLog(l); err != nil {
			a.closeFiles()
			return nil, err
		}
		if l.rule < 0 {
			if len(l.segs) == 0 {
				continue
			}
			a.logs = append(a.logs, l)
			a.log.Warn("archive directory of a rule no longer configured: its messages are kept until their retention",
				"filter", l.filter, "dir", filepath.Base(l.dir), "retention", l.retention.String())
		}
	}
	for _, l := range a.logs {
		for _, sg := range l.segs {
			a.lastID = max(a.lastID, sg.last)
		}
	}
	a.b = newBatcher(o.BatchSize, o.FlushInterval, a.flush)
	if o.ReadOnly {
		a.b.closeUnstarted()
		return a, nil
	}
	for _, l := range a.logs {
		if l.rule >= 0 && len(l.segs) > 0 {
			// The newest segment carries the rule's settings, for the
			// read-only tools and for when the rule is removed.
			if err := a.putInfo(l, l.segs[len(l.segs)-1].db); err != nil {
				a.closeFiles()
				return nil, fmt.Errorf("update archive rule %q: %w", l.filter, err)
			}
		}
	}
	a.maintain()
	a.b.tick, a.b.tickEvery = a.maintain, archiveMaintenance
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.b.run() }()
	return a, nil
}

// openLog opens the segments of l's directory; a log no rule names takes
// its filter and settings from its newest segment.
func (a *Archive) openLog(l *archLog) error {
	names, err := filepath.Glob(filepath.Join(l.dir, "seg-*.db"))
	if err != nil {
		return err
	}
	sort.Strings(names) // fixed-width hex: by first ID
	for _, name := range names {
		var first uint64
		if _, err := fmt.Sscanf(filepath.Base(name), "seg-%016x.db", &first); err != nil {
			a.log.Warn("ignoring unexpected file in the archive", "file", name)
			continue
		}
		sg, info, err := a.openSegment(name, first)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, sg)
		if info.filter != "" {
			if l.rule >= 0 && info.filter != l.filter {
				return fmt.Errorf("archive segment %s holds rule %q, not %q: %w", name, info.filter, l.filter, ErrCorrupt)
			}
			if l.rule < 0 {
				l.filter, l.retention, l.maxBytes = info.filter, info.retention, info.maxBytes
			}
		}
	}
	if l.rule < 0 && l.retention <= 0 {
		l.retention = 24 * time.Hour
	}
	return nil
}

// Rule returns the index of the rule a message on topic is archived
// under, or -1 when no rule matches: of the matching rules, the one with
// the longest retention. It does not allocate; it is safe for concurrent
// use.
func (a *Archive) Rule(topic string) int {
	for _, i := range a.order {
		if a.opts.Match(a.opts.Rules[i].Filter, topic) {
			return i
		}
	}
	return -1
}

// Add queues a message for the archive under rule (from Rule), with the
// caller's metadata bytes. It returns at once, unless the write queue is
// full, which paces callers to the disk. done (may be nil) is called
// once, on the writer goroutine, with the message's ID after its commit
// (fsync), or with an error; it must not block. The archive keeps topic,
// meta and payload until then: the caller must not modify them.
func (a *Archive) Add(rule int, topic string, meta, payload []byte, done func(id uint64, err error)) {
	if rule < 0 || rule >= len(a.byRule) {
		if done != nil {
			done(0, fmt.Errorf("archive: no rule %d", rule))
		}
		return
	}
	size := queuedBytes(topic, meta, payload)
	a.qmu.Lock()
	for a.queued > 0 && a.queued+size > maxQueuedBytes {
		a.qcond.Wait()
	}
	a.queued += size
	a.qmu.Unlock()
	if !a.b.add(archReq{rule: rule, t: a.opts.Now().UnixNano(), topic: topic, meta: meta, payload: payload, done: done}) {
		a.release(size)
		if done != nil {
			done(0, ErrClosed)
		}
	}
}

// release returns n queued bytes, waking the Adds waiting for them.
func (a *Archive) release(n int) {
	a.qmu.Lock()
	a.queued -= n
	a.qcond.Broadcast()
	a.qmu.Unlock()
}

// Sync returns once every message added before it is committed, with
// ErrClosed after Close.
func (a *Archive) Sync() error {
	errc := make(chan error, 1)
	if !a.b.add(archReq{rule: -1, done: func(_ uint64, err error) { errc <- err }}) {
		return ErrClosed
	}
	return <-errc
}

// Close commits what is queued, stops the writer and closes the files.
// It is idempotent.
func (a *Archive) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	a.b.close()
	a.wg.Wait()
	return a.closeFiles()
}

func (a *Archive) closeFiles() error {
	a.mu.Lock()
	logs := a.logs
	a.logs = nil
	a.mu.Unlock()
	var errs []error
	for _, l := range logs {
		for _, sg := range l.segs {
			errs = append(errs, sg.db.Close())
		}
	}
	return errors.Join(errs...)
}

// ArchiveStats are the archive's counters.
type ArchiveStats struct {
	Written        uint64 // messages committed
	Failed         uint64 // messages lost to failed commits
	Capped         uint64 // messages dropped by a rule's max bytes
	Expired        uint64 // messages dropped by retention
	CorruptRecords uint64 // records that failed their checksum when read
	Commits        uint64 // write batches
	Bytes          int64  // size of the archive's files
}

// Stats returns the archive's counters. It is safe for concurrent use.
func (a *Archive) Stats() ArchiveStats {
	st := ArchiveStats{Written: a.written.Load(), Failed: a.failed.Load(), Capped: a.capped.Load(),
		Expired: a.expired.Load(), CorruptRecords: a.corrupt.Load(), Commits: a.commits.Load()}
	a.mu.RLock()
	for _, l := range a.logs {
		for _, sg := range l.segs {
			st.Bytes += sg.size
		}
	}
	a.mu.RUnlock()
	return st
}
