package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// checkNoTemp fails if an editing left a temporary file in dir.
func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", filepath.Base(path), got, want)
	}
}

func checkLogin(t *testing.T, path, user, pw string, want bool) {
	t.Helper()
	p, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Check(user, []byte(pw)); got != want {
		t.Errorf("Check(%q, %q) = %v, want %v", user, pw, got, want)
	}
}

// hashRE matches the hash part of a line, to compare files without it.
var hashRE = regexp.MustCompile(`\$argon2id\$[^\r\n]*`)

func TestSetPassword_CreateUpdateAppend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	if err := SetPassword(path, "alice", []byte("one")); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path, 0o600)
	checkLogin(t, path, "alice", "one", true)

	// Comments, blank lines and CRLF endings are kept.
	os.WriteFile(path, []byte("# head\r\n"+readFile(t, path)+"\n# tail\nbob:"+hashHunter), 0o600)
	if err := SetPassword(path, "alice", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "carol", []byte("three")); err != nil {
		t.Fatal(err)
	}
	got := hashRE.ReplaceAllString(readFile(t, path), "H")
	if want := "# head\r\nalice:H\n\n# tail\nbob:H\ncarol:H\n"; got != want {
		t.Errorf("file is\n%q\nwant\n%q", got, want)
	}
	checkLogin(t, path, "alice", "one", false)
	checkLogin(t, path, "alice", "two", true)
	checkLogin(t, path, "bob", "hunter2", true)
	checkLogin(t, path, "carol", "three", true)
	checkNoTemp(t, dir)
}

func TestSetPassword_KeepsModeAndLink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "real")
	os.WriteFile(path, []byte("bob:"+hashHunter+"\r\n"), 0o640)
	os.Chmod(path, 0o640)
	link := filepath.Join(dir, "link")
	if err := os.Symlink("real", link); err != nil {
		t.Skip(err)
	}
	if err := SetPassword(link, "bob", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("link replaced by a file")
	}
	checkMode(t, path, 0o640)
	checkLogin(t, path, "bob", "new", true)
	if got := readFile(t, path); !strings.HasSuffix(got, "\r\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("line ending not kept: %q", got)
	}
	checkNoTemp(t, dir)
}

func TestSetPassword_Refuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	tests := []struct {
		name, user, pw string
		err            error
	}{
		{"empty password", "alice", "", ErrEmptyPassword},
		{"colon in user", "ali:ce", "pw", ErrBadUsername},
		{"empty user", "", "pw", ErrBadUsername},
		{"newline in user", "ali\nce", "pw", ErrBadUsername},
		{"comment user", "#alice", "pw", ErrBadUsername},
		{"trailing space", "alice ", "pw", ErrBadUsername},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := SetPassword(path, tc.user, []byte(tc.pw)); !errors.Is(err, tc.err) {
				t.Errorf("SetPassword(%q, %q) = %v, want %v", tc.user, tc.pw, err, tc.err)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("file created: %v", err)
			}
		})
	}

	// A file that does not parse is left alone.
	bad := "alice:" + hashSecret + "\nbob:\n"
	os.WriteFile(path, []byte(bad), 0o600)
	err := SetPassword(path, "carol", []byte("pw"))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Errorf("SetPassword on a bad file = %v, want a ParseError at line 2", err)
	}
	if got := readFile(t, path); got != bad {
		t.Errorf("bad file changed to %q", got)
	}
	checkNoTemp(t, dir)
}

func TestDeletePassword(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	os.WriteFile(path, []byte("# users\nalice:"+hashSecret+"\n\nbob:"+hashHunter), 0o600)
	if err := DeletePassword(path, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, path), "# users\n\nbob:"+hashHunter; got != want {
		t.Errorf("file is %q, want %q", got, want)
	}
	if err := DeletePassword(path, "bob"); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, path), "# users\n\n"; got != want {
		t.Errorf("file is %q, want %q", got, want)
	}
	if err := DeletePassword(path, "bob"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("deleting bob twice: %v, want ErrUnknownUser", err)
	}
	// "users" is in a comment, not a user.
	if err := DeletePassword(path, "# users"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("deleting a comment: %v, want ErrUnknownUser", err)
	}
	if err := DeletePassword(filepath.Join(dir, "missing"), "bob"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("DeletePassword(missing file) = %v, want ErrNotExist", err)
	}
	checkNoTemp(t, dir)
}
