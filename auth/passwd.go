package auth

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

const passwdUsage = `usage: gatemq passwd FILE USER              set USER's password, asking for it twice
       gatemq passwd -b FILE USER PASSWORD  set it from the command line, for scripts
       gatemq passwd -D FILE USER           delete USER

FILE is created with mode 0600 if it does not exist. A password given with
-b can be seen by other users in the process list and stays in the shell's
history: prefer the prompt.
`

// errNotTerminal is returned when the password cannot be read without
// echo.
var errNotTerminal = errors.New("standard input is not a terminal: use -b FILE USER PASSWORD in scripts")

// PasswdMain runs "gatemq passwd" with the arguments after "passwd" and
// returns the exit code: 0 on success, 1 if the file could not be
// changed, 2 for bad arguments. Without -b it reads the password twice
// from stdin, which must be a terminal (an *os.File), with echo off;
// prompts and errors go to stderr.
func PasswdMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return passwd(args, stdout, stderr, func(prompt string) ([]byte, error) {
		return readTerminalPassword(stdin, stderr, prompt)
	})
}

// passwd is PasswdMain with the terminal replaced by readPassword, which
// shows a prompt and returns what was typed.
func passwd(args []string, stdout, stderr io.Writer, readPassword func(prompt string) ([]byte, error)) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	batch := fs.Bool("b", false, "take the password from the command line")
	del := fs.Bool("D", false, "delete the user")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, passwdUsage)
			return 0
		}
		return usageError(stderr, err.Error())
	}
	args = fs.Args()
	want := 2
	if *batch {
		want = 3
	}
	switch {
	case *batch && *del:
		return usageError(stderr, "-b and -D cannot be used together")
	case len(args) != want:
		return usageError(stderr, fmt.Sprintf("want %d arguments, got %d", want, len(args)))
	}
	file, user := args[0], args[1]
	if err := checkUsername(user); err != nil {
		return fail(stderr, err)
	}

	if *del {
		if err := DeletePassword(file, user); err != nil {
			return fail(stderr, err)
		}
		return 0
	}

	var pw []byte
	if *batch {
		pw = []byte(args[2])
	} else {
		var err error
		if pw, err = promptTwice(readPassword); err != nil {
			return fail(stderr, err)
		}
	}
	defer clear(pw)
	if err := SetPassword(file, user, pw); err != nil {
		return fail(stderr, err)
	}
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o004 != 0 {
		fmt.Fprintf(stderr, "gatemq passwd: warning: %s is readable by every user: chmod o-r it\n", file)
	}
	return 0
}

// promptTwice reads a password and its confirmation.
func promptTwice(readPassword func(string) ([]byte, error)) ([]byte, error) {
	pw, err := readPassword("Password: ")
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	again, err := readPassword("Reenter password: ")
	defer clear(again)
	if err != nil {
		clear(pw)
		return nil, fmt.Errorf("read password: %w", err)
	}
	if !bytes.Equal(pw, again) {
		clear(pw)
		return nil, errors.New("passwords do not match")
	}
	if len(pw) == 0 {
		return nil, ErrEmptyPassword
	}
	return pw, nil
}

// readTerminalPassword prints prompt to w and reads a line from stdin
// with echo off.
func readTerminalPassword(stdin io.Reader, w io.Writer, prompt string) ([]byte, error) {
	f, ok := stdin.(interface{ Fd() uintptr })
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errNotTerminal
	}
	fmt.Fprint(w, prompt)
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(w)
	return pw, err
}

func usageError(w io.Writer, msg string) int {
	fmt.Fprintf(w, "gatemq passwd: %s\n%s", msg, passwdUsage)
	return 2
}

func fail(w io.Writer, err error) int {
	fmt.Fprintf(w, "gatemq passwd: %v\n", err)
	return 1
}
