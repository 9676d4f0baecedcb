package main

import (
	"fmt"
	"log/slog"
	"os"
)

// prepareDataDir creates the data directory with mode 0700, and tightens
// an existing one that other users can reach to 0700. The data holds
// every client's sessions and messages, so it is for the broker's user
// alone; the files in it are created 0600 by their owners (boltstore).
// The umask cannot widen these modes (it only clears bits), but it does
// not tighten a directory that was already there, hence the check.
func prepareDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s: not a directory", dir)
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("data directory %s is open to other users (mode %#o): %w", dir, mode, err)
		}
		log.Warn("data directory was open to other users: now 0700", "dir", dir, "mode", fmt.Sprintf("%#o", mode))
	}
	return nil
}
