package boltstore

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Backup: every bbolt file of a data directory as JSON lines, bucket by
// bucket and key by key, so that Import writes the same keys and values
// back and a second export of the result is the same text. Nothing is
// interpreted, so whatever a feature keeps in its buckets (sessions,
// cursors, retained messages, stream records, ...) goes along, and the
// records keep their IDs, which the sessions' cursors refer to.
//
// Lines, in order:
//
//	{"format":"gatemq-export","version":1,"created":"...","site":"...","shards":1}
//	{"file":"ds/meta.db"}
//	{"file":"ds/meta.db","bucket":["sessions"],"sequence":0}
//	{"file":"ds/meta.db","bucket":["sessions"],"key":"dev1\u0000state","value_b64":"..."}
//	...
//	{"end":true,"files":2,"buckets":9,"keys":1234}
//
// A name, key or value that is valid UTF-8 is a JSON string ("bucket",
// "key", "value"); anything else is base64 ("bucket_b64", "key_b64",
// "value_b64"). A bucket's keys follow its line; nested buckets have
// paths of several names.

// ExportFormat names the backup format in its first line.
const ExportFormat = "gatemq-export"

// ExportFile is one bbolt file to export: Name is its path relative to
// the data directory, with "/" separators.
type ExportFile struct {
	Name string
	DB   *bolt.DB
}

// exportLine is one line of a backup; only the fields of its kind are set.
type exportLine struct {
	Format     string   `json:"format,omitempty"`
	Version    int      `json:"version,omitempty"`
	Created    string   `json:"created,omitempty"`
	Site       string   `json:"site,omitempty"`
	Shards     int      `json:"shards,omitempty"`
	File       string   `json:"file,omitempty"`
	Bucket     []string `json:"bucket,omitempty"`
	BucketB64  []string `json:"bucket_b64,omitempty"`
	Sequence   *uint64  `json:"sequence,omitempty"`
	Key        *string  `json:"key,omitempty"`
	KeyB64     *string  `json:"key_b64,omitempty"`
	Value      *string  `json:"value,omitempty"`
	ValueB64   *string  `json:"value_b64,omitempty"`
	End        bool     `json:"end,omitempty"`
	Files      int      `json:"files,omitempty"`
	Buckets    int      `json:"buckets,omitempty"`
	Keys       int      `json:"keys,omitempty"`
	hasBucket  bool
	bucketPath [][]byte
}

// ExportStats counts what an export or import wrote.
type ExportStats struct {
	Files, Buckets, Keys int
}

// Files returns the store's files for Export: meta.db first, then the
// generations, oldest first. prefix is the store's directory relative
// to the data directory ("ds").
func (s *Store) Files(prefix string) []ExportFile {
	files := []ExportFile{{Name: prefix + "/meta.db", DB: s.meta}}
	s.mu.RLock()
	for _, g := range s.gens {
		files = append(files, ExportFile{Name: prefix + "/" + filepath.Base(g.path), DB: g.db})
	}
	s.mu.RUnlock()
	return files
}

// Export writes files to w as a backup (see above). Each file is read in
// one read transaction: a running broker goes on writing meanwhile, and
// meta.db is read before the generations, so that the sessions' cursors
// are never ahead of the records exported. A generation dropped by
// retention during the export is left out.
func Export(w io.Writer, site SiteID, shards int, now time.Time, files []ExportFile) (ExportStats, error) {
	var st ExportStats
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(exportLine{Format: ExportFormat, Version: 1, Created: now.UTC().Format(time.RFC3339Nano),
		Site: site.String(), Shards: shards}); err != nil {
		return st, err
	}
	for _, f := range files {
		err := f.DB.View(func(tx *bolt.Tx) error {
			if err := enc.Encode(exportLine{File: f.Name}); err != nil {
				return err
			}
			st.Files++
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				return exportBucket(enc, f.Name, [][]byte{name}, b, &st)
			})
		})
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			continue // a generation dropped by retention meanwhile
		}
		if err != nil {
			return st, fmt.Errorf("export %s: %w", f.Name, err)
		}
	}
	if err := enc.Encode(exportLine{End: true, Files: st.Files, Buckets: st.Buckets, Keys: st.Keys}); err != nil {
		return st, err
	}
	return st, bw.Flush()
}

func exportBucket(enc *json.Encoder, file string, path [][]byte, b *bolt.Bucket, st *ExportStats) error {
	seq := b.Sequence()
	line := exportLine{File: file, Sequence: &seq}
	setBucket(&line, path)
	if err := enc.Encode(line); err != nil {
		return err
	}
	st.Buckets++
	var nested [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if v == nil {
			nested = append(nested, append([]byte(nil), k...))
			return nil
		}
		kv := exportLine{File: file}
		setBucket(&kv, path)
		kv.Key, kv.KeyB64 = textOrB64(k)
		kv.Value, kv.ValueB64 = textOrB64(v)
		st.Keys++
		return enc.Encode(kv)
	})
	if err != nil {
		return err
	}
	for _, name := range nested {
		child := b.Bucket(name)
		if child == nil {
			continue
		}
		if err := exportBucket(enc, file, append(path[:len(path):len(path)], name), child, st); err != nil {
			return err
		}
	}
	return nil
}

func setBucket(l *exportLine, path [][]byte) {
	text := true
	for _, p := range path {
		text = text && utf8.Valid(p)
	}
	for _, p := range path {
		if text {
			l.Bucket = append(l.Bucket, string(p))
		} else {
			l.BucketB64 = append(l.BucketB64, base64.StdEncoding.EncodeToString(p))
		}
	}
}

func textOrB64(b []byte) (text, b64 *string) {
	s := string(b)
	if utf8.ValidString(s) {
		return &s, nil
	}
	e := base64.StdEncoding.EncodeToString(b)
	return nil, &e
}

func (l *exportLine) decode() error {
	switch {
	case len(l.Bucket) > 0:
		for _, p := range l.Bucket {
			l.bucketPath = append(l.bucketPath, []byte(p))
		}
	case len(l.BucketB64) > 0:
		for _, p := range l.BucketB64 {
			b, err := base64.StdEncoding.DecodeString(p)
			if err != nil {
				return fmt.Errorf("bucket name: %w", err)
			}
			l.bucketPath = append(l.bucketPath, b)
		}
	}
	l.hasBucket = len(l.bucketPath) > 0
	return nil
}

func fromTextOrB64(text, b64 *string, what string) ([]byte, error) {
	switch {
	case text != nil:
		return []byte(*text), nil
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("no %s", what)
}

// ErrNotEmpty is Import's error for a data directory that already holds
// bbolt files.
var ErrNotEmpty = errors.New("the data directory already holds a store")

// Import restores a backup written by Export into dataDir, which must
// not hold any .db file yet. It writes in transactions of a few thousand
// keys and syncs each file; on any error it removes the files it
// created, so a failed import leaves no half store behind.
func Import(dataDir string, r io.Reader) (st ExportStats, err error) {
	if existing := dbFiles(dataDir); len(existing) > 0 {
		return st, fmt.Errorf("%s: %s: %w", dataDir, strings.Join(existing, ", "), ErrNotEmpty)
	}
	im := &importer{dir: dataDir, dbs: make(map[string]*bolt.DB)}
	defer func() {
		if cerr := im.closeAll(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			for _, p := range im.created {
				os.Remove(p)
			}
		}
	}()
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	var head exportLine
	if err := dec.Decode(&head); err != nil {
		return st, fmt.Errorf("read the first line: %w", err)
	}
	if head.Format != ExportFormat || head.Version != 1 {
		return st, fmt.Errorf("not a gatemq export (format %q, version %d)", head.Format, head.Version)
	}
	for n := 2; ; n++ {
		var l exportLine
		if err := dec.Decode(&l); err != nil {
			if err == io.EOF {
				return st, errors.New("the export ends before its last line: truncated")
			}
			return st, fmt.Errorf("line %d: %w", n, err)
		}
		if l.End {
			if l.Files != st.Files || l.Buckets != st.Buckets || l.Keys != st.Keys {
				return st, fmt.Errorf("the export says %d files, %d buckets, %d keys; read %d, %d, %d",
					l.Files, l.Buckets, l.Keys, st.Files, st.Buckets, st.Keys)
			}
			return st, im.commit()
		}
		if err := l.decode(); err != nil {
			return st, fmt.Errorf("line %d: %w", n, err)
		}
		if err := im.apply(&l, &st); err != nil {
			return st, fmt.Errorf("line %d: %w", n, err)
		}
	}
}

// importer holds the file being written and its open transaction.
type importer struct {
	dir     string
	dbs     map[string]*bolt.DB
	created []string
	tx      *bolt.Tx
	txFile  string
	puts    int
}

func (im *importer) apply(l *exportLine, st *ExportStats) error {
	if l.File == "" {
		return errors.New("a line without a file")
	}
	if err := im.begin(l.File); err != nil {
		return err
	}
	switch {
	case !l.hasBucket:
		st.Files++
		return nil
	case l.Key == nil && l.KeyB64 == nil:
		b, err := im.bucket(l.bucketPath, true)
		if err != nil {
			return err
		}
		if l.Sequence != nil {
			if err := b.SetSequence(*l.Sequence); err != nil {
				return err
			}
		}
		st.Buckets++
		return nil
	}
	k, err := fromTextOrB64(l.Key, l.KeyB64, "key")
	if err != nil {
		return err
	}
	v, err := fromTextOrB64(l.Value, l.ValueB64, "value")
	if err != nil {
		return err
	}
	b, err := im.bucket(l.bucketPath, false)
	if err != nil {
		return err
	}
	if err := b.Put(k, v); err != nil {
		return err
	}
	st.Keys++
	im.puts++
	if im.puts >= 5000 {
		return im.commit()
	}
	return nil
}

// begin makes sure a write transaction on file is open.
func (im *importer) begin(file string) error {
	if im.tx != nil && im.txFile == file {
		return nil
	}
	if err := im.commit(); err != nil {
		return err
	}
	db := im.dbs[file]
	if db == nil {
		clean := filepath.Clean(filepath.FromSlash(file))
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) || !strings.HasSuffix(clean, ".db") {
			return fmt.Errorf("file %q: not a .db path inside the data directory", file)
		}
		path := filepath.Join(im.dir, clean)
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("file %q appears twice", file)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		im.created = append(im.created, path)
		var err error
		if db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}); err != nil {
			return err
		}
		im.dbs[file] = db
	}
	tx, err := db.Begin(true)
	if err != nil {
		return err
	}
	im.tx, im.txFile = tx, file
	return nil
}

func (im *importer) bucket(path [][]byte, create bool) (*bolt.Bucket, error) {
	var b *bolt.Bucket
	for i, name := range path {
		var next *bolt.Bucket
		if i == 0 {
			next = im.tx.Bucket(name)
		} else {
			next = b.Bucket(name)
		}
		if next == nil {
			if !create {
				return nil, fmt.Errorf("key in bucket %q before the bucket's line", name)
			}
			var err error
			if i == 0 {
				next, err = im.tx.CreateBucket(name)
			} else {
				next, err = b.CreateBucket(name)
			}
			if err != nil {
				return nil, err
			}
		}
		next.FillPercent = 1.0 // keys come in order: pack pages full
		b = next
	}
	return b, nil
}

func (im *importer) commit() error {
	if im.tx == nil {
		return nil
	}
	tx := im.tx
	im.tx, im.puts = nil, 0
	return tx.Commit()
}

func (im *importer) closeAll() error {
	var errs []error
	if im.tx != nil {
		errs = append(errs, im.tx.Rollback())
		im.tx = nil
	}
	names := make([]string, 0, len(im.dbs))
	for n := range im.dbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		errs = append(errs, im.dbs[n].Close())
	}
	return errors.Join(errs...)
}

// dbFiles lists the .db files under dir, relative to it.
func dbFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".db") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// ExportAll writes the whole store as a backup, its files named
// relative to the data directory that holds the store's directory, then
// more (another component's files, such as the archive's).
func (s *Store) ExportAll(w io.Writer, more ...ExportFile) (ExportStats, error) {
	return Export(w, s.site, s.opts.NShards, s.opts.Now(), append(s.Files(filepath.Base(s.dir)), more...))
}

// Files returns the archive's segment files for Export, rule by rule,
// oldest first, named prefix + "/" + their path in the archive's
// directory.
func (a *Archive) Files(prefix string) []ExportFile {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var files []ExportFile
	for _, l := range a.logs {
		for _, sg := range l.segs {
			rel, err := filepath.Rel(a.dir, sg.path)
			if err != nil {
				continue
			}
			files = append(files, ExportFile{Name: prefix + "/" + filepath.ToSlash(rel), DB: sg.db})
		}
	}
	return files
}
