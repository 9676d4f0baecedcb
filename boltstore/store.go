package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Options configures a Store. The zero value means defaults.
type Options struct {
	// NShards is the number of shards, fixed when the store is created.
	// Opening an existing store with another value fails with ErrShards.
	// Default 1: see "Shards and pages" in the package documentation.
	NShards int
	// GenerationInterval is the time slice of a generation. Default 1h.
	GenerationInterval time.Duration
	// Retention is how long a generation is kept after it ends; older
	// ones are dropped whole. Default 24h.
	Retention time.Duration
	// BatchSize closes a write batch at this many records. Default 256.
	BatchSize int
	// FlushInterval closes a write batch this long after its first
	// record. Default 1ms.
	FlushInterval time.Duration
	// MaxBytes caps the size of the store's files; appends beyond it fail
	// with ErrQuota. 0 means no cap.
	MaxBytes int64
	// Logger receives the store's log lines. Default: discard.
	Logger *slog.Logger
	// OpenFile opens the store's files; tests use it to inject faults.
	// Default os.OpenFile.
	OpenFile func(string, int, os.FileMode) (*os.File, error)
	// Now returns the current time; tests move it. Default time.Now.
	Now func() time.Time
	// ReadOnly opens an existing store for reading only (the command-line
	// tools): nothing is created, written or dropped, and Append and the
	// Put methods fail with ErrClosed.
	ReadOnly bool
	// MetaOnly opens an existing store's meta.db alone, for writing (the
	// command-line tools that change presets or retained messages while
	// no broker runs): generation files are neither opened nor dropped,
	// NShards is the store's whatever the option says, and Append fails
	// with ErrClosed. Like a broker, it holds the file's lock: Open fails
	// with ErrLocked while a broker runs.
	MetaOnly bool
}

func (o *Options) withDefaults() Options {
	var d Options
	if o != nil {
		d = *o
	}
	if d.NShards <= 0 {
		d.NShards = 1
	}
	if d.GenerationInterval <= 0 {
		d.GenerationInterval = time.Hour
	}
	if d.Retention <= 0 {
		d.Retention = 24 * time.Hour
	}
	if d.BatchSize <= 0 {
		d.BatchSize = 256
	}
	if d.FlushInterval <= 0 {
		d.FlushInterval = time.Millisecond
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}

// Buckets of meta.db.
var (
	bucketStore    = []byte("store")
	bucketSessions = []byte("sessions")
	bucketCursors  = []byte("cursors")
	bucketRetained = []byte("retained")
	bucketPatterns = []byte("patterns") // in each generation file
	keySite        = []byte("site")
	keyShards      = []byte("shards")
)

// Store is the durable message and session store. Its methods are safe
// for concurrent use. See the package documentation for the layout.
type Store struct {
	dir  string
	opts Options
	site SiteID
	meta *bolt.DB
	log  *slog.Logger

	// mu guards gens, heads, changed and closed.
	mu      sync.RWMutex
	gens    []*generation // by ascending id
	heads   map[StreamKey]uint64
	changed chan struct{} // closed and replaced at every message commit
	closed  bool

	w  *msgWriter
	mw *committer
	wg sync.WaitGroup

	corrupt uint64      // records that failed their checksum when read (atomic via mu)
	dm      diskMetrics // commit counters and observer; see metrics.go
}

// generation is one generation file.
type generation struct {
	id   Gen
	path string
	db   *bolt.DB
	lrn  *learner // patterns; written by the writer goroutine with s.mu held
}

func (s *Store) boltOptions() *bolt.Options { return boltOptions(s.opts.OpenFile, s.opts.ReadOnly) }

// boltOptions are the bbolt options of every file of the package, the
// store's and the archive's.
func boltOptions(openFile func(string, int, os.FileMode) (*os.File, error), readOnly bool) *bolt.Options {
	return &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true, // the freelist is rebuilt on open; fewer bytes per commit
		FreelistType:   bolt.FreelistMapType,
		OpenFile:       openFile,
		ReadOnly:       readOnly,
	}
}

// Open opens or creates the store in dir. It recovers every generation
// file, so that on return everything committed before a crash is
// readable.
func Open(dir string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	if o.ReadOnly || o.MetaOnly {
		if _, err := os.Stat(filepath.Join(dir, "meta.db")); err != nil {
			return nil, fmt.Errorf("no store in %s: %w", dir, err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	s := &Store{dir: dir, opts: o, log: o.Logger, heads: make(map[StreamKey]uint64), changed: make(chan struct{})}
	meta, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, s.boltOptions())
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", filepath.Join(dir, "meta.db"), ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Join(dir, "meta.db"), err)
	}
	s.meta = meta
	if err := s.initMeta(); err != nil {
		meta.Close()
		return nil, err
	}
	if !o.MetaOnly {
		if err := s.openGenerations(); err != nil {
			s.closeFiles()
			return nil, err
		}
	}
	s.mw = newCommitter(s.meta, o.BatchSize, o.FlushInterval)
	s.mw.dm = &s.dm
	s.w = newMsgWriter(s)
	if o.ReadOnly || o.MetaOnly {
		s.w.b.closeUnstarted() // appends fail with ErrClosed, never queue
	}
	if o.ReadOnly {
		s.mw.b.closeUnstarted()
		return s, nil
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.mw.b.run() }()
	if !o.MetaOnly {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.w.b.run() }()
	}
	return s, nil
}

func (s *Store) initMeta() error {
	if s.opts.ReadOnly {
		return s.meta.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketStore)
			if b == nil || len(b.Get(keySite)) != len(s.site) {
				return fmt.Errorf("%s: not a gatemq store: %w", s.dir, ErrCorrupt)
			}
			copy(s.site[:], b.Get(keySite))
			if v := b.Get(keyShards); len(v) == 2 {
				s.opts.NShards = int(binary.BigEndian.Uint16(v))
			}
			return nil
		})
	}
	return s.meta.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketStore, bucketSessions, bucketCursors, bucketRetained} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		b := tx.Bucket(bucketStore)
		if v := b.Get(keySite); len(v) == len(s.site) {
			copy(s.site[:], v)
		} else {
			site, err := newSiteID()
			if err != nil {
				return err
			}
			s.site = site
			if err := b.Put(keySite, site[:]); err != nil {
				return err
			}
		}
		if v := b.Get(keyShards); len(v) == 2 {
			if n := int(binary.BigEndian.Uint16(v)); s.opts.MetaOnly {
				s.opts.NShards = n
			} else if n != s.opts.NShards {
				return fmt.Errorf("store in %s has %d shards, configured %d: %w", s.dir, n, s.opts.NShards, ErrShards)
			}
		} else if err := b.Put(keyShards, binary.BigEndian.AppendUint16(nil, uint16(s.opts.NShards))); err != nil {
			return err
		}
		return nil
	})
}

func (s *Store) genPath(g Gen) string {
	return filepath.Join(s.dir, fmt.Sprintf("gen-%08d.db", g))
}

// openGenerations opens every generation file in the directory, reads
// its patterns and the head of each stream, and drops those past
// retention.
func (s *Store) openGenerations() error {
	names, err := filepath.Glob(filepath.Join(s.dir, "gen-*.db"))
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		var id uint32
		if _, err := fmt.Sscanf(filepath.Base(name), "gen-%08d.db", &id); err != nil {
			s.log.Warn("ignoring unexpected file in the store", "file", name)
			continue
		}
		g, err := s.openGeneration(Gen(id))
		if err != nil {
			return err
		}
		s.gens = append(s.gens, g)
	}
	if !s.opts.ReadOnly {
		s.dropExpired()
	}
	return nil
}

func (s *Store) openGeneration(id Gen) (*generation, error) {
	path := s.genPath(id)
	db, err := bolt.Open(path, 0o600, s.boltOptions())
	if err != nil {
		return nil, fmt.Errorf("open generation %s: %w", path, err)
	}
	g := &generation{id: id, path: path, db: db, lrn: newLearner()}
	run := db.Update
	if s.opts.ReadOnly {
		run = db.View
	}
	err = run(func(tx *bolt.Tx) error {
		pb := tx.Bucket(bucketPatterns)
		if pb == nil && !s.opts.ReadOnly {
			var err error
			if pb, err = tx.CreateBucketIfNotExists(bucketPatterns); err != nil {
				return err
			}
		}
		if pb == nil {
			return nil
		}
		if err := pb.ForEach(func(k, v []byte) error {
			if len(k) != 4 {
				return fmt.Errorf("pattern key of %d bytes: %w", len(k), ErrCorrupt)
			}
			g.lrn.add(StreamID(binary.BigEndian.Uint32(k)), string(v))
			return nil
		}); err != nil {
			return err
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			k, ok := parseBucketName(name, id)
			if !ok {
				return nil
			}
			if last, _ := b.Cursor().Last(); len(last) == 8 {
				s.heads[k] = binary.BigEndian.Uint64(last)
			}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("recover generation %s: %w", path, err)
	}
	g.lrn.markPersisted()
	return g, nil
}

// genAt returns the generation of time t.
func (s *Store) genAt(t time.Time) Gen {
	return Gen(t.UnixNano() / int64(s.opts.GenerationInterval))
}

// genStart returns when generation g starts.
func (s *Store) genStart(g Gen) time.Time {
	return time.Unix(0, int64(g)*int64(s.opts.GenerationInterval))
}

// current returns the generation for writes now, creating its file when
// time has moved into a new one. It runs on the writer goroutine.
func (s *Store) current() (*generation, error) {
	want := s.genAt(s.opts.Now())
	s.mu.RLock()
	var last *generation
	if n := len(s.gens); n > 0 {
		last = s.gens[n-1]
	}
	s.mu.RUnlock()
	if last != nil && last.id >= want {
		return last, nil // a clock stepping back keeps writing the newest
	}
	g, err := s.openGeneration(want)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.gens = append(s.gens, g)
	s.mu.Unlock()
	s.log.Info("new generation", "generation", want, "file", filepath.Base(g.path))
	s.dropExpired()
	return g, nil
}

// dropExpired closes and deletes the generations that ended more than
// Retention ago. The newest generation is never dropped.
func (s *Store) dropExpired() {
	cutoff := s.opts.Now().Add(-s.opts.Retention)
	s.mu.Lock()
	var drop []*generation
	for len(s.gens) > 1 && !s.genStart(s.gens[0].id+1).After(cutoff) {
		drop = append(drop, s.gens[0])
		for k := range s.heads {
			if k.Gen == s.gens[0].id {
				delete(s.heads, k)
			}
		}
		s.gens = s.gens[1:]
	}
	s.mu.Unlock()
	for _, g := range drop {
		// Close waits for read transactions in progress.
		if err := g.db.Close(); err != nil {
			s.log.Warn("close expired generation", "file", g.path, "err", err)
		}
		if err := os.Remove(g.path); err != nil {
			s.log.Error("delete expired generation", "file", g.path, "err", err)
			continue
		}
		s.log.Info("dropped expired generation", "generation", g.id, "file", filepath.Base(g.path))
	}
}

// Close stops the writers, after committing what they hold, and closes
// the files. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.w.close()
	s.mw.close()
	s.wg.Wait()
	return s.closeFiles()
}

func (s *Store) closeFiles() error {
	var errs []error
	s.mu.Lock()
	gens := s.gens
	s.gens = nil
	s.mu.Unlock()
	for _, g := range gens {
		errs = append(errs, g.db.Close())
	}
	if s.meta != nil {
		errs = append(errs, s.meta.Close())
	}
	return errors.Join(errs...)
}

// Site returns the store's site ID.
func (s *Store) Site() SiteID { return s.site }

// NShards returns the number of shards.
func (s *Store) NShards() int { return s.opts.NShards }

// sizeBytes returns the total size of the store's files.
func (s *Store) sizeBytes() int64 {
	var total int64
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".db") {
			if fi, err := e.Info(); err == nil {
				total += fi.Size()
			}
		}
	}
	return total
}
