package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// SetPassword sets user's password in the password file at path: it
// replaces the user's line where it is or appends one, and keeps every
// other line, comment and blank line as it was. A missing file is created
// with mode 0600; an existing one keeps its mode and owner. The file is
// replaced atomically (temporary file, fsync, rename, fsync of the
// directory), so the broker never reads half a file. It refuses to edit a
// file that does not parse, an invalid user name (ErrBadUsername) and an
// empty password (ErrEmptyPassword).
//
// Two processes editing the same file at once may lose one of the edits.
func SetPassword(path, user string, password []byte) error {
	if err := checkUsername(user); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	h, err := HashPassword(password)
	if err != nil {
		return fmt.Errorf("set password of %q: %w", user, err)
	}
	err = editPasswordFile(path, true, func(lines [][]byte, at int) ([][]byte, error) {
		entry := []byte(user + ":" + h)
		if at >= 0 {
			lines[at] = append(entry, lineEnd(lines[at])...)
			return lines, nil
		}
		if n := len(lines); n > 0 && len(lineEnd(lines[n-1])) == 0 {
			lines[n-1] = append(lines[n-1], '\n')
		}
		return append(lines, append(entry, '\n')), nil
	}, user)
	if err != nil {
		return fmt.Errorf("set password of %q: %w", user, err)
	}
	return nil
}

// DeletePassword removes user's line from the password file at path,
// keeping every other line. It returns ErrUnknownUser if there is none,
// and writes the file as SetPassword does.
func DeletePassword(path, user string) error {
	err := editPasswordFile(path, false, func(lines [][]byte, at int) ([][]byte, error) {
		if at < 0 {
			return nil, ErrUnknownUser
		}
		return append(lines[:at], lines[at+1:]...), nil
	}, user)
	if err != nil {
		return fmt.Errorf("delete user %q: %w", user, err)
	}
	return nil
}

// editPasswordFile reads the password file at path (an empty one if it is
// missing and create is set), checks that it parses, splits it into lines
// with their endings, finds user's line (-1 if none), lets edit change the
// lines and writes the result back atomically.
func editPasswordFile(path string, create bool, edit func(lines [][]byte, at int) ([][]byte, error), user string) error {
	// Edit the file a symbolic link points to rather than replacing the
	// link with a file.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	data, err := os.ReadFile(path)
	var fi fs.FileInfo
	switch {
	case err == nil:
		if fi, err = os.Stat(path); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist) && create:
		data = nil
	default:
		return err
	}
	if _, err := parsePasswordLines(bytes.NewReader(data), path); err != nil {
		return fmt.Errorf("refusing to edit: %w", err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	at := -1
	for i, l := range lines {
		if lineUser(l) == user {
			at = i
			break
		}
	}
	if lines, err = edit(lines, at); err != nil {
		return err
	}
	return writeFileAtomic(path, bytes.Join(lines, nil), fi)
}

// lineUser returns the user name of a password line, or "" for a blank
// line or a comment.
func lineUser(l []byte) string {
	s := strings.TrimLeftFunc(string(l), unicode.IsSpace)
	if s == "" || s[0] == '#' {
		return ""
	}
	u, _, _ := strings.Cut(string(l), ":")
	return u
}

// lineEnd returns the "\n" or "\r\n" that ends l, if any.
func lineEnd(l []byte) []byte {
	switch {
	case bytes.HasSuffix(l, []byte("\r\n")):
		return []byte("\r\n")
	case bytes.HasSuffix(l, []byte("\n")):
		return []byte("\n")
	}
	return nil
}

// writeFileAtomic replaces the file at path with data: it writes a
// temporary file in the same directory, gives it the mode and owner of
// old (0600 and the caller's if old is nil), syncs it, renames it over
// path and syncs the directory, so that a crash leaves the old file or
// the new one.
func writeFileAtomic(path string, data []byte, old fs.FileInfo) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	mode := fs.FileMode(0o600)
	if old != nil {
		mode = old.Mode().Perm()
		if err = keepOwner(f, old); err != nil {
			return fmt.Errorf("keep the owner of %s: %w", path, err)
		}
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable. It is best effort: the rename
// has happened, and some file systems cannot sync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
