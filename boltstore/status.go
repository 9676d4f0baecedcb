package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Client status: for every client ID the state of its last connection, in
// meta.db (issue 4, point 1).
//
//	"status"         client ID -> status value + CRC-32C
//	"status_online"  site (8) + client ID -> online_at (unix ms, int64 BE) + CRC-32C
//
// "status_online" holds exactly the records that are online, by site, so
// the clients connected to one site list without reading the offline
// ones. Both buckets are written in the same transaction (PutStatus,
// MarkOffline) and created by the first write, so a store made before
// them opens unchanged.

var (
	bucketStatus       = []byte("status")
	bucketStatusOnline = []byte("status_online")
)

// MaxStatusClientID is the longest client ID, in bytes, whose status is
// recorded: a bbolt key holds at most 32768 bytes, and the online index
// puts the site before the client ID. PutStatus skips longer ones.
const MaxStatusClientID = bolt.MaxKeySize - len(SiteID{})

// ClientStatus is the connection status of one client ID.
type ClientStatus struct {
	ClientID string
	Online   bool
	// OnlineAt is when its last connection was accepted (CONNACK).
	OnlineAt time.Time
	// OfflineAt is when its last connection ended; zero while online.
	OfflineAt time.Time
	// Site is the store the client was last connected to.
	Site SiteID
	// Remote is the address the last connection came from.
	Remote string
	// Protocol is the MQTT protocol level of the last connection: 3
	// (3.1), 4 (3.1.1) or 5.
	Protocol   byte
	Username   string
	KeepAlive  uint16 // seconds, as negotiated
	CleanStart bool
	// Reason says why the last connection ended; "" while online.
	Reason string
}

const statusVersion = 1

const (
	statusFlagOnline = 1 << iota
	statusFlagCleanStart
)

// encodeStatus returns a status value (before sealValue):
//
//	[0]      version (1)
//	[1]      flags: 1 online, 2 clean start
//	[2:10]   online_at, unix ms, int64 BE (0: never)
//	[10:18]  offline_at, unix ms, int64 BE (0: never)
//	[18:26]  site
//	[26]     protocol level
//	[27:29]  keepalive, BE
//	...      username, remote, reason: each a uvarint length and the bytes
func encodeStatus(r ClientStatus) []byte {
	var flags byte
	if r.Online {
		flags |= statusFlagOnline
	}
	if r.CleanStart {
		flags |= statusFlagCleanStart
	}
	b := make([]byte, 0, 29+len(r.Username)+len(r.Remote)+len(r.Reason)+9)
	b = append(b, statusVersion, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(unixMilli(r.OnlineAt)))
	b = binary.BigEndian.AppendUint64(b, uint64(unixMilli(r.OfflineAt)))
	b = append(b, r.Site[:]...)
	b = append(b, r.Protocol)
	b = binary.BigEndian.AppendUint16(b, r.KeepAlive)
	for _, s := range [...]string{r.Username, r.Remote, r.Reason} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeStatus is the inverse of encodeStatus on a sealed value.
func decodeStatus(key, v []byte) (ClientStatus, error) {
	b, err := openValue(v)
	if err != nil {
		return ClientStatus{}, err
	}
	if len(b) < 29 || b[0] != statusVersion {
		return ClientStatus{}, fmt.Errorf("status value of %d bytes: %w", len(b), ErrCorrupt)
	}
	r := ClientStatus{
		ClientID:   string(key),
		Online:     b[1]&statusFlagOnline != 0,
		CleanStart: b[1]&statusFlagCleanStart != 0,
		OnlineAt:   fromUnixMilli(int64(binary.BigEndian.Uint64(b[2:]))),
		OfflineAt:  fromUnixMilli(int64(binary.BigEndian.Uint64(b[10:]))),
		Protocol:   b[26],
		KeepAlive:  binary.BigEndian.Uint16(b[27:]),
	}
	copy(r.Site[:], b[18:26])
	rest := b[29:]
	for _, dst := range [...]*string{&r.Username, &r.Remote, &r.Reason} {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return ClientStatus{}, fmt.Errorf("status string: %w", ErrCorrupt)
		}
		*dst = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	return r, nil
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromUnixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func onlineKey(site SiteID, clientID string) []byte {
	return append(site[:len(site):len(site)], clientID...)
}

// putStatusTx writes r and keeps the online index in step: the old
// record's index entry goes, the new one's comes if it is online.
func putStatusTx(b, ix *bolt.Bucket, r ClientStatus) error {
	key := []byte(r.ClientID)
	if old := b.Get(key); old != nil {
		if o, err := decodeStatus(key, old); err == nil && o.Online && o.Site != r.Site {
			if err := ix.Delete(onlineKey(o.Site, r.ClientID)); err != nil {
				return err
			}
		}
	}
	if err := b.Put(key, sealValue(encodeStatus(r))); err != nil {
		return err
	}
	k := onlineKey(r.Site, r.ClientID)
	if !r.Online {
		return ix.Delete(k)
	}
	return ix.Put(k, sealValue(binary.BigEndian.AppendUint64(nil, uint64(unixMilli(r.OnlineAt)))))
}

func statusBuckets(tx *bolt.Tx) (b, ix *bolt.Bucket, err error) {
	if b, err = tx.CreateBucketIfNotExists(bucketStatus); err != nil {
		return nil, nil, err
	}
	if ix, err = tx.CreateBucketIfNotExists(bucketStatusOnline); err != nil {
		return nil, nil, err
	}
	return b, ix, nil
}

// PutStatus writes client status records, all in one transaction with
// the other meta.db writes of its batch; done (may be nil) is called
// after the commit. Records whose client ID is empty or longer than
// MaxStatusClientID are skipped. It blocks only while the meta writer's
// queue is full.
func (s *Store) PutStatus(recs []ClientStatus, done func(error)) {
	recs = append([]ClientStatus(nil), recs...) // the caller may reuse its slice
	s.mw.update(func(tx *bolt.Tx) error {
		b, ix, err := statusBuckets(tx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.ClientID == "" || len(r.ClientID) > MaxStatusClientID {
				continue
			}
			if err := putStatusTx(b, ix, r); err != nil {
				return fmt.Errorf("put status of %q: %w", r.ClientID, err)
			}
		}
		return nil
	}, done)
}

// Status returns the status of clientID and whether there is one.
func (s *Store) Status(clientID string) (ClientStatus, bool, error) {
	var (
		r     ClientStatus
		found bool
	)
	err := s.meta.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStatus)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(clientID))
		if v == nil {
			return nil
		}
		var err error
		r, err = decodeStatus([]byte(clientID), v)
		found = err == nil
		return err
	})
	if err != nil {
		return ClientStatus{}, false, fmt.Errorf("status of %q: %w", clientID, err)
	}
	return r, found, nil
}

// Statuses calls fn for every status record, by client ID. A record that
// fails its checksum goes to bad (may be nil) and is skipped.
func (s *Store) Statuses(fn func(ClientStatus) error, bad func(clientID string, err error)) error {
	return s.meta.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStatus)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			r, err := decodeStatus(k, v)
			if err != nil {
				if bad != nil {
					bad(string(k), err)
				}
				return nil
			}
			return fn(r)
		})
	})
}

// OnlineStatuses calls fn for the records of the clients online at site,
// by client ID, reading only those (the "status_online" index). An index
// entry without an online record of that site goes to bad (may be nil).
func (s *Store) OnlineStatuses(site SiteID, fn func(ClientStatus) error, bad func(clientID string, err error)) error {
	return s.meta.View(func(tx *bolt.Tx) error {
		b, ix := tx.Bucket(bucketStatus), tx.Bucket(bucketStatusOnline)
		if b == nil || ix == nil {
			return nil
		}
		c := ix.Cursor()
		for k, _ := c.Seek(site[:]); k != nil && bytes.HasPrefix(k, site[:]); k, _ = c.Next() {
			id := k[len(site):]
			r, err := decodeStatus(id, b.Get(id))
			if err == nil && (!r.Online || r.Site != site) {
				err = fmt.Errorf("online index entry of an offline record: %w", ErrCorrupt)
			}
			if err != nil {
				if bad != nil {
					bad(string(id), err)
				}
				continue
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// MarkOffline sets every record still online at site offline, at at,
// with reason: at startup, these are the clients that were connected
// when the broker stopped without recording it (a crash, kill -9). It
// returns how many there were, once they are committed.
func (s *Store) MarkOffline(site SiteID, at time.Time, reason string) (int, error) {
	n := 0
	errc := make(chan error, 1)
	s.mw.update(func(tx *bolt.Tx) error {
		n = 0
		b, ix, err := statusBuckets(tx)
		if err != nil {
			return err
		}
		var keys [][]byte
		c := ix.Cursor()
		for k, _ := c.Seek(site[:]); k != nil && bytes.HasPrefix(k, site[:]); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			id := k[len(site):]
			r, err := decodeStatus(id, b.Get(id))
			if err != nil || !r.Online || r.Site != site {
				// A stale entry: the record says otherwise or cannot
				// say; the index must not list it.
				if err := ix.Delete(k); err != nil {
					return err
				}
				continue
			}
			r.Online, r.OfflineAt, r.Reason = false, at, reason
			if err := putStatusTx(b, ix, r); err != nil {
				return err
			}
			n++
		}
		return nil
	}, func(err error) { errc <- err })
	if err := <-errc; err != nil {
		return 0, fmt.Errorf("mark clients offline: %w", err)
	}
	return n, nil
}

// statusCounts returns the number of status records and of those online
// at site, reading the online index for the latter.
func statusCounts(tx *bolt.Tx, site SiteID) (records, online int) {
	b, ix := tx.Bucket(bucketStatus), tx.Bucket(bucketStatusOnline)
	if b == nil || ix == nil {
		return 0, 0
	}
	c := ix.Cursor()
	for k, _ := c.Seek(site[:]); k != nil && bytes.HasPrefix(k, site[:]); k, _ = c.Next() {
		online++
	}
	return b.Stats().KeyN, online
}

// checkStatus verifies every status record's checksum and that the
// online index lists exactly the online records.
func (s *Store) checkStatus() []error {
	var errs []error
	err := s.meta.View(func(tx *bolt.Tx) error {
		b, ix := tx.Bucket(bucketStatus), tx.Bucket(bucketStatusOnline)
		if b == nil {
			return nil
		}
		online := 0
		err := b.ForEach(func(k, v []byte) error {
			r, err := decodeStatus(k, v)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("status %q: %w", k, err))
			case r.Online && (ix == nil || ix.Get(onlineKey(r.Site, r.ClientID)) == nil):
				errs = append(errs, fmt.Errorf("status %q: online but not in the online index: %w", k, ErrCorrupt))
			case r.Online:
				online++
			}
			return nil
		})
		if err != nil || ix == nil {
			return err
		}
		if n := ix.Stats().KeyN; n != online {
			errs = append(errs, fmt.Errorf("online index has %d entries for %d online records: %w", n, online, ErrCorrupt))
		}
		return nil
	})
	if err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
		errs = append(errs, err)
	}
	return errs
}

// PruneStatus deletes the records of clients offline since before
// before, and returns how many went, once that is committed. Online
// records stay whatever their age.
func (s *Store) PruneStatus(before time.Time) (int, error) {
	n := 0
	errc := make(chan error, 1)
	s.mw.update(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucketStatus)
		if b == nil {
			return nil
		}
		var old [][]byte
		err := b.ForEach(func(k, v []byte) error {
			r, err := decodeStatus(k, v)
			if err == nil && !r.Online && r.OfflineAt.Before(before) {
				old = append(old, bytes.Clone(k))
			}
			return nil // a corrupt record is Check's to report
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	}, func(err error) { errc <- err })
	if err := <-errc; err != nil {
		return 0, fmt.Errorf("prune client status: %w", err)
	}
	return n, nil
}
