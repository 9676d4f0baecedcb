package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"gatemq/boltstore"
)

// exportMain runs `gatemq export`: the store as JSON lines
// (boltstore.Export), from the running broker through its admin socket,
// else from the data directory.
func exportMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	out := fs.String("o", "-", "write the export to this `file` (- for standard output)")
	of, err := parseOpFlagsWith(fs, args, stderr)
	if err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: gatemq export [-data-dir DIR | -config FILE] [-o FILE]")
		return 2
	}
	w, finish, err := createOutput(*out, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "gatemq export: %v\n", err)
		return 1
	}
	err = of.client().stream("/api/v1/export", w)
	if errors.Is(err, errNoBroker) {
		var st *boltstore.Store
		if st, err = openStoreReadOnly(of.dataDir); err == nil {
			err = exportDir(w, st, of.dataDir)
			st.Close()
		}
	}
	if err = errors.Join(err, finish(err)); err != nil {
		fmt.Fprintf(stderr, "gatemq export: %v\n", err)
		return 1
	}
	return 0
}

// exportDir writes the store st of a stopped broker's data directory,
// and its message archive when there is one.
func exportDir(w io.Writer, st *boltstore.Store, dataDir string) error {
	files := st.Files("ds")
	if _, err := os.Stat(filepath.Join(dataDir, "archive")); err == nil {
		_, err := withArchive(dataDir, func(a *boltstore.Archive) (struct{}, error) {
			_, err := boltstore.Export(w, st.Site(), st.NShards(), time.Now(), append(files, a.Files("archive")...))
			return struct{}{}, err
		})
		return err
	}
	_, err := boltstore.Export(w, st.Site(), st.NShards(), time.Now(), files)
	return err
}

// createOutput opens path for writing through a temporary file renamed
// into place by finish when the whole export succeeded; "-" is stdout.
func createOutput(path string, stdout io.Writer) (io.Writer, func(error) error, error) {
	if path == "-" {
		return stdout, func(error) error { return nil }, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, nil, err
	}
	return f, func(failed error) error {
		if failed != nil {
			f.Close()
			os.Remove(f.Name())
			return nil
		}
		if err := errors.Join(f.Sync(), f.Close()); err != nil {
			os.Remove(f.Name())
			return err
		}
		return os.Rename(f.Name(), path)
	}, nil
}

// importMain runs `gatemq import`: a backup written by export into a
// data directory without a store (so never into a running broker's).
func importMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	of, err := parseOpFlagsWith(fs, args, stderr)
	if err != nil {
		return 2
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "usage: gatemq import [-data-dir DIR | -config FILE] [FILE]   (standard input without FILE or with -)")
		return 2
	}
	in := stdin
	if name := fs.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "gatemq import: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	if err := prepareDataDir(of.dataDir, slog.New(slog.NewTextHandler(stderr, nil))); err != nil {
		fmt.Fprintf(stderr, "gatemq import: %v\n", err)
		return 1
	}
	st, err := boltstore.Import(of.dataDir, in)
	if err == nil {
		// What was written must open as a store and pass its check.
		var s *boltstore.Store
		if s, err = openStoreReadOnly(of.dataDir); err == nil {
			err = errors.Join(s.Check(), s.Close())
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "gatemq import: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d files, %d buckets, %d keys into %s\n", st.Files, st.Buckets, st.Keys, of.dataDir)
	return 0
}

// stream copies the answer to a GET to w, without a time limit (an
// export can be large).
func (c *apiClient) stream(path string, w io.Writer) error {
	if c.hc == nil {
		if err := c.find(); err != nil {
			return err
		}
	}
	hc := *c.hc
	hc.Timeout = 0
	resp, err := hc.Get("http://gatemq" + path)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
