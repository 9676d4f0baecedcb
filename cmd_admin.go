package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"gatemq/admin"
	"gatemq/conf"
)

// errNoBroker says that no broker answers on the admin socket: the
// commands that can then read the data directory.
var errNoBroker = errors.New("no broker answers on the admin socket")

// systemdAdminSocket is the admin socket of a broker run by the systemd
// unit, under its RuntimeDirectory=gatemq: where the operator commands
// look when the data directory's socket does not answer, as from an SSH
// shell, which has no RUNTIME_DIRECTORY. A variable for tests.
var systemdAdminSocket = "/run/gatemq/admin.sock"

// adminSocket returns the Unix socket the broker serves its admin API on:
// [admin] socket; else, under systemd's RuntimeDirectory= (which sets
// RUNTIME_DIRECTORY), admin.sock there; else DATA_DIR/admin.sock.
func adminSocket(cfg conf.Config) string {
	if cfg.Admin.Socket != "" {
		return cfg.Admin.Socket
	}
	if dir := runtimeDirectory(); dir != "" {
		return filepath.Join(dir, "admin.sock")
	}
	return filepath.Join(cfg.DataDir, "admin.sock")
}

// adminSockets returns where the operator commands look for a running
// broker, in order: adminSocket, and when [admin] socket is unset also
// DATA_DIR/admin.sock and systemdAdminSocket.
func adminSockets(cfg conf.Config) []string {
	out := []string{adminSocket(cfg)}
	if cfg.Admin.Socket != "" {
		return out
	}
	for _, s := range []string{filepath.Join(cfg.DataDir, "admin.sock"), systemdAdminSocket} {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// runtimeDirectory returns the first directory of RUNTIME_DIRECTORY,
// which systemd sets for RuntimeDirectory= (a colon-separated list when
// the unit names several), or "".
func runtimeDirectory() string {
	dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":")
	return dir
}

func parseOpFlagsWith(fs *flag.FlagSet, args []string, stderr io.Writer) (opFlags, error) {
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "read data_dir and [admin] socket from this TOML `file`")
	dataDir := fs.String("data-dir", "", "data `directory` (default ./data)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return opFlags{}, err
	}
	cfg := conf.Default()
	if *configPath != "" {
		var err error
		if cfg, err = conf.Load(*configPath); err != nil {
			fmt.Fprintf(stderr, "gatemq %s: %v\n", fs.Name(), err)
			return opFlags{}, err
		}
	}
	cfg.ApplyOverrides("", *dataDir)
	// A data directory named on the command line is the one to serve,
	// unless [admin] socket names the broker outright.
	checkDir := (*configPath != "" || *dataDir != "") && cfg.Admin.Socket == ""
	return opFlags{dataDir: cfg.DataDir, checkDir: checkDir, sockets: adminSockets(cfg), json: *asJSON, cfg: cfg}, nil
}

// apiClient talks to the admin API of the running broker, on the first
// of its sockets where one answers (find).
type apiClient struct {
	sockets  []string // candidates, in order
	dataDir  string   // the data directory the broker must serve, with checkDir
	checkDir bool
	hc       *http.Client // talks to the socket that answered; nil until find
}

func (of opFlags) client() *apiClient {
	return &apiClient{sockets: of.sockets, dataDir: of.dataDir, checkDir: of.checkDir}
}

// unixClient returns an HTTP client for the admin API on socket.
func unixClient(socket string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// find picks the first socket where a broker answers /healthz and, with
// checkDir, serves the data directory when the socket is not in it: the
// systemd unit's socket (/run/gatemq) may be another broker's than the
// data directory's the operator asked about. It returns errNoBroker,
// wrapped, when no broker answers.
func (c *apiClient) find() error {
	var firstErr error
	for _, s := range c.sockets {
		hc := unixClient(s)
		var h admin.Health
		err := get(hc, "/healthz", &h)
		switch {
		case noBroker(err):
			continue
		case err != nil:
			firstErr = cmp.Or(firstErr, fmt.Errorf("%s: %w", s, err))
			continue
		case c.checkDir && s != filepath.Join(c.dataDir, "admin.sock") && !sameDir(h.DataDir, c.dataDir):
			continue
		}
		c.hc = hc
		return nil
	}
	if firstErr != nil {
		return firstErr
	}
	return fmt.Errorf("%w (%s)", errNoBroker, strings.Join(c.sockets, ", "))
}

// sameDir reports whether a and b name the same existing directory.
func sameDir(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// noBroker reports whether a request error says that nothing listens on
// the socket.
func noBroker(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// do sends a request to the running broker and decodes the JSON answer
// into v. It returns errNoBroker, wrapped, when no broker answers.
func (c *apiClient) do(method, path string, v any) error { return c.send(method, path, nil, v) }

// send is do with a body, in, sent as JSON when not nil.
func (c *apiClient) send(method, path string, in, v any) error {
	if c.hc == nil {
		if err := c.find(); err != nil {
			return err
		}
	}
	return request(c.hc, method, path, in, v)
}

// request sends a request with hc, and in as its JSON body when not nil,
// and decodes the JSON answer into v.
func request(hc *http.Client, method, path string, in, v any) error {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://gatemq"+path, rd)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API: read answer: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("admin API: decode answer: %w", err)
	}
	return nil
}

func get(hc *http.Client, path string, v any) error { return request(hc, http.MethodGet, path, nil, v) }

func (c *apiClient) get(path string, v any) error { return c.do(http.MethodGet, path, v) }

// askOrRead gets path from the running broker's admin API, or, when no
// broker answers, from read (the data directory).
func askOrRead[T any](of opFlags, path string, read func() (T, error)) (T, error) {
	var v T
	err := of.client().get(path, &v)
	if errors.Is(err, errNoBroker) {
		v, err = read()
	}
	return v, err
}

// answerError is the error of an answer other than 200: the API's own
// message when it sent one.
func answerError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return fmt.Errorf("admin API: %s", resp.Status)
}

// kickMain runs `gatemq kick CLIENT_ID`.
func kickMain(args []string, stdout, stderr io.Writer) int {
	id, of, ok := parseIDOpFlags("kick", args, stderr, "usage: gatemq kick CLIENT_ID [-data-dir DIR | -config FILE] [-json]")
	if !ok {
		return 2
	}
	var res map[string]string
	if err := of.client().do(http.MethodPost, "/api/v1/clients/"+url.PathEscape(id), &res); err != nil {
		fmt.Fprintf(stderr, "gatemq kick: %v\n", err)
		return 1
	}
	if of.json {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "kicked %s\n", id)
	return 0
}

// parseIDOpFlags parses a client or message ID, before or after the
// operator flags, for the commands about one client or message. It prints usageLine or the error and
// returns false when the arguments are wrong.
func parseIDOpFlags(name string, args []string, stderr io.Writer, usageLine string) (string, opFlags, bool) {
	var id string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	of, err := parseOpFlagsWith(fs, args, stderr)
	if err != nil {
		return "", opFlags{}, false
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() != 0 || id == "" {
		fmt.Fprintln(stderr, usageLine)
		return "", opFlags{}, false
	}
	return id, of, true
}
