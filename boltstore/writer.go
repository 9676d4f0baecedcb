package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// appendReq is one message waiting for the writer.
type appendReq struct {
	shard   ShardID
	topic   string
	meta    []byte
	payload []byte
	once    []byte // AppendOnce's key, recorded in the same transaction
	forget  []byte // Forget's key: a request with no record
	barrier bool   // Sync's request: no record, done after the commit
	done    AppendDone
}

// AppendDone hears how an append ended: once, on the writer goroutine,
// after the commit and fsync that hold the record (err nil), or with the
// reason it is not stored (ErrQuota, ErrClosed, an I/O error). It must
// not block. An interface rather than a function, so that a caller can
// make one object carry its own state and the answer.
type AppendDone interface {
	AppendDone(id RecordID, err error)
}

// AppendFunc adapts a function to AppendDone.
type AppendFunc func(RecordID, error)

// AppendDone calls f.
func (f AppendFunc) AppendDone(id RecordID, err error) { f(id, err) }

// msgWriter is the single writer of the message log: it takes appends
// from every publisher, groups them into one transaction per batch
// (group commit) and calls each append's done after the commit returned,
// that is after fsync. Each (site, shard) log thus has one writer.
type msgWriter struct {
	s      *Store
	b      *batcher[appendReq] // the group commit; its flush is commit
	size   atomic.Int64        // store size, refreshed by the writer
	sizeAt time.Time

	// Counters, read by Stats.
	commits   atomic.Uint64
	records   atomic.Uint64
	refused   atomic.Uint64 // quota
	failed    atomic.Uint64 // I/O errors
	lastBatch atomic.Int64

	// Only the writer's goroutine uses these.
	lastTime int64 // the newest record's time
	// A commit's buffers, kept for the next: its records' IDs and times,
	// the streams' new heads, and the keys and blocks.
	idBuf   []RecordID
	timeBuf []int64
	heads   map[StreamKey]uint64
	arena   []byte

	// Health, read by Healthy.
	commitStart atomic.Int64 // UnixNano when the commit in progress began; 0 between commits
	lastFailed  atomic.Bool  // the last commit failed with an I/O error

	group atomic.Pointer[func(calls func())] // see GroupDone
}

func newMsgWriter(s *Store) *msgWriter {
	w := &msgWriter{s: s, heads: make(map[StreamKey]uint64)}
	w.b = newBatcher(s.opts.BatchSize, s.opts.FlushInterval, w.commit)
	w.b.tick, w.b.tickEvery = s.dropExpired, time.Minute
	w.size.Store(s.sizeBytes())
	return w
}

// Append queues a record for the publisher's shard. done is called once,
// from the writer goroutine, after the record is committed and synced
// (err nil) or when it cannot be (ErrQuota, ErrClosed, an I/O error); it
// must not block. Append blocks while the write queue is full, which
// paces publishers to the disk.
func (s *Store) Append(publisher, topic string, meta, payload []byte, done func(RecordID, error)) {
	s.AppendOnce(publisher, topic, meta, payload, nil, AppendFunc(done))
}

// AppendOnce is Append that also records key in the same transaction as
// the record, so that "this publisher's message with this packet ID is
// stored" survives a crash exactly when the record does (inbound QoS 2,
// exactly once). OnceKeys lists the keys; Forget releases one.
func (s *Store) AppendOnce(publisher, topic string, meta, payload, key []byte, done AppendDone) {
	if len(key) > bolt.MaxKeySize {
		done.AppendDone(RecordID{}, ErrKeyTooLong) // in the batch it would fail every other append
		return
	}
	s.enqueue(appendReq{shard: ShardOf(publisher, s.opts.NShards), topic: topic, meta: meta, payload: payload, once: key, done: done})
}

// Forget releases a key recorded by AppendOnce (the publisher's PUBREL
// came). It is written with the next batch; done may be nil.
func (s *Store) Forget(key []byte, done func(error)) {
	s.enqueue(appendReq{forget: key, done: AppendFunc(func(_ RecordID, err error) {
		if done != nil {
			done(err)
		}
	})})
}

// Sync returns once everything queued before it, message and meta
// writes alike, is committed (or failed), with the first error.
func (s *Store) Sync() error {
	errc := make(chan error, 2)
	s.enqueue(appendReq{barrier: true, done: AppendFunc(func(_ RecordID, err error) { errc <- err })})
	s.mw.update(func(*bolt.Tx) error { return nil }, func(err error) { errc <- err })
	return errors.Join(<-errc, <-errc)
}

func (s *Store) enqueue(req appendReq) {
	if !s.w.b.add(req) {
		req.done.AppendDone(RecordID{}, ErrClosed)
	}
}

var bucketOnce = []byte("once")

func (w *msgWriter) close() { w.b.close() }

func (w *msgWriter) commit(batch []appendReq) {
	s := w.s
	w.commitStart.Store(time.Now().UnixNano())
	defer w.commitStart.Store(0)
	fail := func(err error) {
		w.answer(func() {
			for _, r := range batch {
				r.done.AppendDone(RecordID{}, err)
			}
		})
	}
	if now := s.opts.Now(); now.Sub(w.sizeAt) > 100*time.Millisecond {
		w.size.Store(s.sizeBytes())
		w.sizeAt = now
	}
	if s.opts.MaxBytes > 0 && w.size.Load() >= s.opts.MaxBytes {
		w.refused.Add(uint64(len(batch)))
		s.log.Warn("storage quota reached: refusing writes", "max_bytes", s.opts.MaxBytes, "size", w.size.Load(), "refused", len(batch))
		fail(ErrQuota)
		return
	}
	g, err := s.current()
	if err != nil {
		w.failed.Add(uint64(len(batch)))
		w.lastFailed.Store(true)
		s.log.Error("open generation for writing", "err", err)
		fail(err)
		return
	}
	ids, times := w.ids(len(batch))
	newHeads := w.heads
	var newPatterns []StreamID
	// bbolt keeps each key and value until the commit: the batch's keys
	// and blocks share one buffer, kept from commit to commit.
	need, records := 0, 0
	for _, r := range batch {
		if r.forget == nil && !r.barrier {
			need += 2 + 8 + recordSize(r.topic, r.meta, r.payload)
			records++
		}
	}
	arena := w.buffer(need)
	// Record times only grow, a nanosecond apart within a batch in the
	// order of the appends: a session reading several streams merges
	// them by time.
	base := max(s.opts.Now().UnixNano(), w.lastTime)
	var last int64
	err = s.dm.update(g.db, len(batch), func(tx *bolt.Tx) error {
		clear(newHeads)
		newPatterns = newPatterns[:0]
		last = base
		pb := tx.Bucket(bucketPatterns)
		// The batch's records by stream, in the order each stream first
		// came: a stream's records are written together, in blocks.
		var streams []*streamPuts
		byKey := make(map[StreamKey]*streamPuts)
		var ob *bolt.Bucket
		onceBucket := func() (*bolt.Bucket, error) {
			if ob == nil {
				var err error
				ob, err = tx.CreateBucketIfNotExists(bucketOnce)
				return ob, err
			}
			return ob, nil
		}
		for i, r := range batch {
			if r.barrier {
				continue
			}
			if r.forget != nil {
				// A tombstone in the newest generation: the key may sit
				// in an older one, which is never written again.
				b, err := onceBucket()
				if err != nil {
					return err
				}
				if err := b.Put(r.forget, nil); err != nil {
					return fmt.Errorf("put once tombstone: %w", err)
				}
				continue
			}
			if r.once != nil {
				b, err := onceBucket()
				if err != nil {
					return err
				}
				if err := b.Put(r.once, []byte{1}); err != nil {
					return fmt.Errorf("put once key: %w", err)
				}
			}
			s.mu.Lock() // the learner's patterns are read by Streams
			id, pattern, _ := g.lrn.stream(r.topic)
			needPattern := !g.lrn.persisted[id-1]
			s.mu.Unlock()
			if needPattern {
				if err := pb.Put(binary.BigEndian.AppendUint32(nil, uint32(id)), []byte(pattern)); err != nil {
					return fmt.Errorf("put pattern: %w", err)
				}
				newPatterns = append(newPatterns, id)
			}
			k := StreamKey{Site: s.site, Shard: r.shard, Gen: g.id, Stream: id}
			sp := byKey[k]
			if sp == nil {
				b, err := tx.CreateBucketIfNotExists(k.bucketName())
				if err != nil {
					return fmt.Errorf("create stream bucket: %w", err)
				}
				b.FillPercent = 1.0 // keys only grow: pack pages full
				sp = &streamPuts{b: b}
				byKey[k] = sp
				streams = append(streams, sp)
			}
			seq, ok := newHeads[k]
			if !ok {
				s.mu.RLock()
				seq = s.heads[k]
				s.mu.RUnlock()
			}
			seq++
			newHeads[k] = seq
			last++
			ids[i], times[i] = RecordID{StreamKey: k, Seq: seq}, last
			sp.reqs = append(sp.reqs, i)
		}
		buf := arena[:0]
		for _, sp := range streams {
			put := func(key, block []byte) error {
				if err := sp.b.Put(key, block); err != nil {
					return fmt.Errorf("put records: %w", err)
				}
				return nil
			}
			var sb streamBlock
			var prev uint64
			for _, i := range sp.reqs {
				r := &batch[i]
				var err error
				if buf, err = sb.add(buf, prev, ids[i].Seq, times[i], r.topic, r.meta, r.payload, put); err != nil {
					return err
				}
				prev = ids[i].Seq
			}
			var err error
			if buf, err = sb.close(buf, prev, put); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.failed.Add(uint64(len(batch)))
		w.lastFailed.Store(true)
		s.log.Error("commit messages: not acknowledged", "records", len(batch), "err", err)
		fail(err)
		return
	}
	w.lastTime = last
	s.mu.Lock()
	for _, id := range newPatterns {
		g.lrn.persisted[id-1] = true
	}
	for k, seq := range newHeads {
		s.heads[k] = seq
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	w.commits.Add(1)
	w.lastFailed.Store(false)
	w.records.Add(uint64(records))
	w.lastBatch.Store(int64(len(batch)))
	w.answer(func() {
		for i, r := range batch {
			r.done.AppendDone(ids[i], nil)
		}
	})
}

// answer makes a batch's AppendDone calls, through the caller's
// GroupDone function when there is one.
func (w *msgWriter) answer(calls func()) {
	if g := w.group.Load(); g != nil {
		(*g)(calls)
		return
	}
	calls()
}

// GroupDone makes the message writer pass each batch's AppendDone calls
// to group, as a function that group must call once, on the writer's
// goroutine, before it returns. A caller can so gather what the calls
// do and act once per commit: the broker writes each publisher's
// acknowledgements with one write per commit, not one per message. nil
// removes it.
func (s *Store) GroupDone(group func(calls func())) {
	if group == nil {
		s.w.group.Store(nil)
		return
	}
	s.w.group.Store(&group)
}

// ids returns the commit's slices of n record IDs and times, zeroed.
func (w *msgWriter) ids(n int) ([]RecordID, []int64) {
	if cap(w.idBuf) < n {
		w.idBuf, w.timeBuf = make([]RecordID, n), make([]int64, n)
	}
	w.idBuf, w.timeBuf = w.idBuf[:n], w.timeBuf[:n]
	clear(w.idBuf)
	clear(w.timeBuf)
	return w.idBuf, w.timeBuf
}

// buffer returns the commit's empty buffer for size bytes of keys and
// blocks. One past maxKeptBuffer (a batch of large payloads) is not
// kept for the next commit.
func (w *msgWriter) buffer(size int) []byte {
	w.arena = keptBuffer(w.arena, size)
	return w.arena
}

// streamPuts is one stream's share of a batch.
type streamPuts struct {
	b    *bolt.Bucket
	reqs []int // indexes in the batch, in order
}

// committer groups meta.db updates from many goroutines into one
// transaction per batch and calls each update's done after the commit.
type committer struct {
	db *bolt.DB
	b  *batcher[metaOp] // the group commit; its flush is commit
	dm *diskMetrics     // the store's; see metrics.go
}

type metaOp struct {
	apply func(tx *bolt.Tx) error
	done  func(error)
}

func newCommitter(db *bolt.DB, maxBatch int, interval time.Duration) *committer {
	c := &committer{db: db}
	c.b = newBatcher(maxBatch, interval, c.commit)
	return c
}

// update queues apply for the next batch; done (may be nil) is called
// after the commit with its result.
func (c *committer) update(apply func(tx *bolt.Tx) error, done func(error)) {
	if !c.b.add(metaOp{apply, done}) && done != nil {
		done(ErrClosed)
	}
}

func (c *committer) close() { c.b.close() }

func (c *committer) commit(batch []metaOp) {
	err := c.dm.update(c.db, 0, func(tx *bolt.Tx) error {
		for _, op := range batch {
			if err := op.apply(tx); err != nil {
				return err
			}
		}
		return nil
	})
	for _, op := range batch {
		if op.done != nil {
			op.done(err)
		}
	}
}
