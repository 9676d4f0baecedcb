package auth

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// typed is a fake terminal: it answers prompts with the given lines.
type typed struct {
	answers []string
	prompts []string
}

func (ty *typed) read(prompt string) ([]byte, error) {
	ty.prompts = append(ty.prompts, prompt)
	if len(ty.answers) == 0 {
		return nil, errors.New("EOF")
	}
	a := ty.answers[0]
	ty.answers = ty.answers[1:]
	return []byte(a), nil
}

func runPasswd(t *testing.T, ty *typed, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	if ty == nil {
		ty = &typed{}
	}
	code = passwd(args, &o, &e, ty.read)
	return code, o.String(), e.String()
}

func TestPasswd(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "passwd")

	// -b creates the file, mode 0600.
	if code, _, e := runPasswd(t, nil, "-b", file, "alice", "secret"); code != 0 {
		t.Fatalf("passwd -b: exit %d, %s", code, e)
	}
	checkMode(t, file, 0o600)
	checkLogin(t, file, "alice", "secret", true)

	// -b updates.
	if code, _, e := runPasswd(t, nil, "-b", file, "alice", "changed"); code != 0 {
		t.Fatalf("passwd -b update: exit %d, %s", code, e)
	}
	checkLogin(t, file, "alice", "changed", true)
	checkLogin(t, file, "alice", "secret", false)

	// The prompt asks twice.
	ty := &typed{answers: []string{"s3cret", "s3cret"}}
	if code, _, e := runPasswd(t, ty, file, "bob"); code != 0 {
		t.Fatalf("passwd prompt: exit %d, %s", code, e)
	}
	if len(ty.prompts) != 2 {
		t.Errorf("prompts %q, want two", ty.prompts)
	}
	checkLogin(t, file, "bob", "s3cret", true)

	// -D deletes.
	if code, _, e := runPasswd(t, nil, "-D", file, "alice"); code != 0 {
		t.Fatalf("passwd -D: exit %d, %s", code, e)
	}
	checkLogin(t, file, "alice", "changed", false)
	checkLogin(t, file, "bob", "s3cret", true)
	checkMode(t, file, 0o600)
	checkNoTemp(t, dir)
}

func TestPasswd_Failures(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "passwd")
	os.WriteFile(file, []byte("alice:"+hashSecret+"\n"), 0o600)
	tests := []struct {
		name    string
		typed   []string
		args    []string
		code    int
		message string
	}{
		{"no arguments", nil, nil, 2, "want 2 arguments, got 0"},
		{"one argument", nil, []string{file}, 2, "want 2 arguments"},
		{"too many", nil, []string{file, "bob", "pw"}, 2, "want 2 arguments, got 3"},
		{"-b without password", nil, []string{"-b", file, "bob"}, 2, "want 3 arguments"},
		{"-b and -D", nil, []string{"-b", "-D", file, "bob", "pw"}, 2, "cannot be used together"},
		{"-D with password", nil, []string{"-D", file, "bob", "pw"}, 2, "want 2 arguments"},
		{"unknown flag", nil, []string{"-c", file, "bob"}, 2, "flag provided but not defined: -c"},
		{"bad user name", nil, []string{"-b", file, "bo:b", "pw"}, 1, "contains ':'"},
		{"empty password -b", nil, []string{"-b", file, "bob", ""}, 1, "empty password"},
		{"empty password typed", []string{"", ""}, []string{file, "bob"}, 1, "empty password"},
		{"mismatch", []string{"one", "two"}, []string{file, "bob"}, 1, "do not match"},
		{"no terminal", nil, []string{file, "bob"}, 1, "read password"},
		{"delete unknown", nil, []string{"-D", file, "bob"}, 1, "no such user"},
		{"delete from missing file", nil, []string{"-D", filepath.Join(dir, "none"), "bob"}, 1, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runPasswd(t, &typed{answers: tc.typed}, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.message) {
				t.Errorf("stderr %q does not say %q", stderr, tc.message)
			}
			if tc.code == 2 && !strings.Contains(stderr, "usage: gatemq passwd") {
				t.Errorf("no usage on stderr: %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	checkLogin(t, file, "alice", "secret", true)
	checkLogin(t, file, "bob", "one", false)
	checkNoTemp(t, dir)
}

func TestPasswd_Help(t *testing.T) {
	code, stdout, _ := runPasswd(t, nil, "-h")
	if code != 0 || !strings.HasPrefix(stdout, "usage: gatemq passwd") {
		t.Errorf("-h: exit %d, stdout %q", code, stdout)
	}
}

func TestPasswdMain_NotATerminal(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "passwd")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.WriteString("secret\nsecret\n")
	w.Close()
	for _, stdin := range []io.Reader{r, strings.NewReader("secret\nsecret\n")} {
		var o, e bytes.Buffer
		code := PasswdMain([]string{file, "alice"}, stdin, &o, &e)
		if code != 1 || !strings.Contains(e.String(), "not a terminal: use -b") {
			t.Errorf("stdin %T: exit %d, stderr %q; want 1 and a hint about -b", stdin, code, e.String())
		}
	}
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file created without a password: %v", err)
	}

	// -b needs no terminal.
	var o, e bytes.Buffer
	if code := PasswdMain([]string{"-b", file, "alice", "secret"}, strings.NewReader(""), &o, &e); code != 0 {
		t.Fatalf("PasswdMain -b: exit %d, %s", code, e.String())
	}
	checkLogin(t, file, "alice", "secret", true)
}

func TestPasswd_WarnsWorldReadable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(file, nil, 0o644)
	os.Chmod(file, 0o644)
	code, _, stderr := runPasswd(t, nil, "-b", file, "alice", "secret")
	if code != 0 || !strings.Contains(stderr, "readable by every user") {
		t.Errorf("exit %d, stderr %q; want 0 and a warning", code, stderr)
	}
}
