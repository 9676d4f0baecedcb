//go:build unix

package auth

import (
	"io/fs"
	"os"
	"syscall"
)

// keepOwner gives f the owner and group of old, so that rewriting a
// password file as root leaves it readable by the broker's user. It fails
// when the caller may not do that, rather than silently handing the file
// to someone else.
func keepOwner(f *os.File, old fs.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err == nil {
		if cur, ok := fi.Sys().(*syscall.Stat_t); ok && cur.Uid == st.Uid && cur.Gid == st.Gid {
			return nil
		}
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}
