// Package boltstore is gatemq's durable storage on flash: MQTT messages
// for durable sessions, the sessions' state and cursors, and retained
// messages, in bbolt files. It speaks bytes and its own value types; it
// knows nothing of MQTT sessions, only that topics have "/" levels.
//
// # Hierarchy
//
// storage -> shard -> generation -> stream, after EMQX's durable storage.
//
//   - Site: a random ID made at first start (meta.db "store"/"site").
//   - Shard: the publisher's client ID hashed (FNV-1a) modulo NShards,
//     fixed at creation (meta.db "store"/"shards"; another value later is
//     ErrShards at Open).
//   - Generation: a time slice of GenerationInterval (index = unix time /
//     interval). Writes go to the newest; older ones are read-only and are
//     dropped whole once they ended more than Retention ago.
//   - Stream: the topics of one learned structure within a generation. A
//     topic level that has taken more than 16 distinct values sends new
//     values to a shared "+" level, so "sensors/1/temp" .. "sensors/16/temp"
//     have streams of their own and "sensors/17/temp" onwards share
//     "sensors/+/temp". A reader asks Streams for the patterns its filters
//     could match and reads only those.
//
// Each (site, shard, generation, stream) is an ordered log with one writer
// (the message writer goroutine); a record's stable ID is that key plus
// its sequence number, from 1.
//
// # Files
//
// One bbolt file per generation, gen-NNNNNNNN.db, and meta.db. Measured on
// the project's 2-core machine (go run of a layout probe writing 6
// generations of 200,000 100-byte records in batches of 256, keeping 3):
//
//	one file, a bucket per generation, oldest bucket deleted:
//	  490k-670k records/s; the file grows to 112 MiB and stays there
//	  (bbolt reuses freed pages but never shrinks a file)
//	one file per generation, oldest file unlinked:
//	  490k-620k records/s; live files 96 MiB, and a dropped
//	  generation's space returns to the filesystem at once
//
// Throughput is the same; per-generation files give space back on a small
// flash card, keep a corrupt generation from touching the others, and let
// a full disk recover by retention. So: a file per generation. Its size
// grows in bbolt's steps (doubling up to 1 GiB) while its generation is
// current, then stays fixed until it is deleted; the store's total is
// about Retention/GenerationInterval+1 generations' worth of data plus
// meta.db. Batch size matters most: 64-byte records commit at about 8k/s
// one per transaction, 86k/s in batches of 16 and 530k/s in batches of 256.
//
// # Shards and pages
//
// Every shard has its own stream buckets, so a commit rewrites the last
// leaf page (and the branch pages above it) of every shard it appends
// to: with one writer, more shards cost flash writes and buy nothing on
// a gateway. BenchmarkAppend (50 publishers, 64-byte payloads, page
// bytes written per record, records/s; go test -bench Append
// -benchtime 50000x ./boltstore):
//
//	shards   100 in flight          1000 in flight (commits of 255)
//	1        345 B/rec,  56k/s      207 B/rec, 520k/s
//	4        682 B/rec,  36k/s      326 B/rec, 380k/s
//	16      1875 B/rec,  44k/s      751 B/rec, 217k/s
//
// So n_shards defaults to 1; the sharding stays, for stores that want
// their (site, shard) logs split, at that cost.
//
// # Generation file layout
//
//	"patterns"                     StreamID (uint32 BE) -> pattern
//	"s"+site(8)+shard(2 BE)+stream(4 BE)   last seq (uint64 BE) -> block
//
// A block (stream_block.go) is a run of up to 996 bytes of one stream's
// records from one commit, stored under its last record's sequence
// number; a value of version 1, from stores written before blocks, is
// one record under its own. With a key per record, bbolt's Put and
// spill were a third of the writer's CPU; in blocks the writer alone
// (BenchmarkAppend, 1 shard, 1000 in flight) went from 322k to 520k
// records/s.
//
// A record is version (1), time (unix ns, uint64 BE; the commit's
// time plus one ns per record of the batch, never going back while the
// store is open, as sessions merge streams by it), topic length
// (uint16 BE) and topic, meta length (uint32 BE) and meta, payload, and a
// CRC-32C of its sequence number (uint64 BE) and everything before it.
// Keys are big-endian so a cursor iterates in order. Stream buckets have FillPercent 1.0: keys only
// grow, so pages are packed full.
//
// # meta.db layout
//
//	"store"     "site" -> SiteID, "shards" -> uint16 BE
//	"sessions"  client ID + 0x00 + part -> caller's bytes + CRC-32C
//	"cursors"   client ID + 0x00 + StreamKey.Bytes() -> seq (uint64 BE)
//	"retained"  topic -> caller's bytes + CRC-32C
//	"assigned"  client ID + 0x00 + RecordID (StreamKey.Bytes, seq BE) -> empty:
//	            a shared subscription's message given to a durable member
//	"offline"   the broker's offline message rules (offline.go):
//	            'q' filter 0x00 'm' -> creation time: the queue exists
//	            'q' filter 0x00 'i' StreamKey -> seq: the queue's index position
//	            'q' filter 0x00 'e' RecordID -> empty: a message waiting in the queue
//	            'p' client ID 0x00 -> last saved: the client is known (pubsub)
//	            'p' client ID 0x00 StreamKey -> seq: its pubsub read position
//	"status"    client ID -> client status + CRC-32C (status.go: state,
//	            online_at, offline_at, site, remote address, protocol level,
//	            user name, keepalive, clean start, disconnect reason)
//	"status_online"  site (8) + client ID -> online_at (unix ms BE) + CRC-32C:
//	            exactly the online records, so one site's connected
//	            clients list without reading the offline ones
//	"presets"   client ID + 0x00 + topic filter -> caller's bytes + CRC-32C:
//	            the subscriptions the broker makes for a client when it
//	            connects (gatemq presets); kept when its session ends.
//	            Created by the first PutPreset.
//
// Status records are written by PutStatus, many per transaction (the
// broker coalesces a client's changes between commits), and never
// deleted. At startup MarkOffline turns the records still online at the
// store's site (the broker stopped without recording their disconnect)
// offline. "status" and "status_online" change in one transaction;
// Check verifies that the index lists exactly the online records.
//
// Preset and retained values are the broker's (broker/presets_store.go,
// broker/durable.go), and the store only seals them: a preset is version
// 1, then flags (QoS in bits 0-1, no local bit 2, retain as published bit
// 3, retain handling bits 4-5); a retained message is 0x00, version 1, the time it was stored
// (unix ns, uint64 BE), then as before: meta length (uvarint), meta,
// payload. A retained value written before that version starts with its
// meta length, never 0, and has no stored time.
//
// # Writes and durability
//
// Append hands a record to the message writer, which commits one bbolt
// transaction per batch: BatchSize records or FlushInterval after the
// first, whichever comes first (group commit). done runs after the commit
// returned, that is after fsync, and never before: a caller acknowledges a
// message to its publisher from done. GroupDone lets the caller wrap a
// batch's done calls, so that the broker writes each publisher's
// acknowledgements once per commit. NoSync is never set. NoFreelistSync
// is: bbolt rebuilds the freelist when a file is opened, and commits write
// fewer pages. Session, cursor and retained writes are grouped the same way
// by a second writer on meta.db.
//
// Options.MetaOnly opens meta.db alone for writing, so that the command
// line can change presets and retained messages of a stopped broker; its
// file lock makes that fail with ErrLocked while a broker runs.
//
// A failed commit (a full disk, an I/O error) fails every append of the
// batch; nothing of it is acknowledged, and the next batch tries again, so
// writes recover by themselves when space returns. MaxBytes caps the
// files' total; appends beyond it fail with ErrQuota.
//
// # Corruption
//
// Every record and meta value carries a CRC-32C. Read skips a record that
// fails it and reports it; it is never returned as data. A block whose
// lengths or count are damaged loses the rest of its records, reported
// once at the first one lost. Check verifies bbolt's page structure,
// every checksum and every block's framing.
//
// # Archive
//
// The message archive (Archive, OpenArchive) is a second, independent set
// of files under its own directory (DATA_DIR/archive): every message on
// the topics of the archive rules, kept for operators to list by topic and
// time, whatever its subscribers. It does not share files or writers with
// the durable store. A message is stored once, under the matching rule
// with the longest retention.
//
//	r-<FNV-1a 64 of the rule's filter, 16 hex>/   one directory per rule
//	    seg-<first ID, 16 hex>.db                  one bbolt file per segment
//
// Each segment file holds:
//
//	"info"  "filter" -> the rule's filter, "retention" -> ns (uint64 BE),
//	        "max_bytes" -> uint64 BE, "count" -> messages in the file
//	"m"     first ID (uint64 BE) -> block: [uint32 BE n][record, n bytes]...
//	"t"     topic + 0x00 + first ID -> IDs (uint64 BE each)
//
// A block holds a run of one rule's messages from one write batch (16 KiB,
// or one larger message), each record in the format above keyed by its ID,
// so each carries its own CRC-32C; the topic index has one key per topic
// and commit listing that topic's messages, each found in the block that
// holds its ID. archive_block.go says why: a key per message cost the
// writer three times as much, and blocks as large as a batch made bbolt
// write every value four times over.
//
// The ID is the time the message reached the archive in unix nanoseconds,
// made unique and increasing by the writer (a clock stepping back, or a
// restart with a clock behind, continues from the last ID + 1), so ID
// order is time order and a time range is an ID range. A topic's messages
// list from the "t" bucket (a seek to topic+0x00+from, then in key order
// either way, each ID looked up in "m"); a filter with wildcards scans the
// "m" blocks by time and asks each record's topic, each page bounded in
// records looked at.
// Topics never hold U+0000 [MQTT-4.7.3-2], so topic+0x00 is an exact
// prefix.
//
// Segments are closed after a sixteenth of the rule's retention (at least
// a minute, at most a day) and, with a cap, at a sixteenth of max_bytes
// (at least 64 KiB). Retention deletes a segment file once its last
// message is past it (List and Get hide older messages at once). The cap
// deletes the oldest files while the rule's files leave less than two
// segments' room under it, before each chunk of at most half a segment is
// written, so the files never exceed it (a chunk grows its file by at
// most a doubling). The oldest messages go first and space returns at
// once, as for generations. The newest segment of a configured rule is
// rewritten with the rule's settings at open; a directory no rule names
// any more keeps being read and is deleted by the retention and cap its
// newest segment recorded.
//
// Writes are batched by one writer goroutine (batcher, batch.go: 4096
// messages or 10ms after the first, one transaction per rule with
// messages in the batch); at most 16 MiB of messages wait for it, beyond
// which Add waits. Add does not wait for the commit; its done callback, if
// any, runs after it. The broker does not wait: a crash loses the
// messages of the batches not yet committed (the last few milliseconds),
// a clean Close commits everything queued. A failed commit loses its
// batch, counted in ArchiveStats.Failed and logged. List skips and counts
// a record failing its checksum (or one a block's lengths or an index
// entry do not lead to); Get returns ErrCorrupt.
//
// # Concurrency
//
// Store's methods are safe for concurrent use. Store.mu guards the list of
// generations, the stream heads and the learners' pattern lists; it is
// held for memory work only, never across a commit. Readers use bbolt read
// transactions, which run alongside the writers; Changed gives a channel
// closed at the next message commit, so readers wait instead of polling.
package boltstore
