package boltstore

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestStore_Healthy(t *testing.T) {
	// Keep every file the store opens, to break them under it.
	var mu sync.Mutex
	var files []*os.File
	s, err := Open(t.TempDir(), &Options{OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, mode)
		if err == nil && strings.HasSuffix(name, ".db") && !strings.HasSuffix(name, "meta.db") {
			mu.Lock()
			files = append(files, f)
			mu.Unlock()
		}
		return f, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Healthy(); err != nil {
		t.Fatalf("fresh store: Healthy() = %v", err)
	}
	appendSync(t, s, "pub", "a/b", "1")
	if err := s.Healthy(); err != nil {
		t.Fatalf("after a commit: Healthy() = %v", err)
	}

	// A generation file whose descriptor is gone fails the next commit.
	mu.Lock()
	for _, f := range files {
		f.Close()
	}
	mu.Unlock()
	errc := make(chan error, 1)
	s.Append("pub", "a/b", []byte("m"), []byte("2"), func(_ RecordID, err error) { errc <- err })
	if err := <-errc; err == nil {
		t.Skip("a commit on closed files succeeded: cannot inject the fault here")
	}
	if err := s.Healthy(); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("after a failed commit: Healthy() = %v, want ErrUnhealthy", err)
	}
}

func TestStore_HealthyClosed(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Healthy(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Healthy() after Close = %v, want ErrClosed", err)
	}
}

func TestStore_HealthyWriterStopped(t *testing.T) {
	s := openTest(t, "", nil)
	s.w.close() // as if the writer goroutine had exited on its own
	if err := s.Healthy(); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("Healthy() with the writer stopped = %v, want ErrUnhealthy", err)
	}
}
