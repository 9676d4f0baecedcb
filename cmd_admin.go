package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"gatemq/admin"
	"gatemq/conf"
)

// errNoBroker says that no broker answers on the admin socket: the
// commands that can then read the data directory.
var errNoBroker = errors.New("no broker answers on the admin socket")

// adminSocket returns the admin API's Unix socket path of cfg.
func adminSocket(cfg conf.Config) string {
	if cfg.Admin.Socket != "" {
		return cfg.Admin.Socket
	}
	return filepath.Join(cfg.DataDir, "admin.sock")
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
	return opFlags{dataDir: cfg.DataDir, socket: adminSocket(cfg), json: *asJSON}, nil
}

// apiClient talks to the admin API on a Unix socket.
type apiClient struct {
	socket string
	hc     *http.Client
}

func (of opFlags) client() *apiClient {
	return &apiClient{socket: of.socket, hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", of.socket)
		},
	}}}
}

// do sends a request and decodes the JSON answer into v. It returns
// errNoBroker, wrapped, when nothing listens on the socket.
func (c *apiClient) do(method, path string, v any) error {
	req, err := http.NewRequest(method, "http://gatemq"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w (%s)", errNoBroker, c.socket)
		}
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("admin API: %s", resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("admin API: decode answer: %w", err)
	}
	return nil
}

func (c *apiClient) get(path string, v any) error { return c.do(http.MethodGet, path, v) }

// clientsMain runs `gatemq clients`: the connected clients of the running
// broker.
func clientsMain(args []string, stdout, stderr io.Writer) int {
	of, err := parseOpFlags("clients", args, stderr)
	if err != nil {
		return 2
	}
	var rows []admin.Client
	if err := of.client().get("/api/v1/clients", &rows); err != nil {
		fmt.Fprintf(stderr, "gatemq clients: %v\n", err)
		return 1
	}
	if of.json {
		return printJSON(stdout, rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tUSERNAME\tREMOTE\tPROTOCOL\tKEEPALIVE\tDURABLE\tCONNECTED SINCE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%ds\t%v\t%s\n", r.ClientID, r.Username, r.Remote, r.ProtocolVersion,
			r.KeepAlive, r.Durable, r.ConnectedAt.UTC().Format(time.RFC3339))
	}
	tw.Flush()
	return 0
}

// kickMain runs `gatemq kick CLIENT_ID`.
func kickMain(args []string, stdout, stderr io.Writer) int {
	const usageLine = "usage: gatemq kick CLIENT_ID [-data-dir DIR | -config FILE] [-json]"
	id, of, ok := parseIDCommand(flag.NewFlagSet("kick", flag.ContinueOnError), args, stderr,
		func() { fmt.Fprintln(stderr, usageLine) })
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

// parseIDCommand parses the arguments of a command that takes one ID (a
// client's, a message's) and the operator flags; the ID may come before
// or after the flags. It reports false, having printed why (usage when
// the arguments do not fit), when the command must exit 2.
func parseIDCommand(fs *flag.FlagSet, args []string, stderr io.Writer, usage func()) (id string, of opFlags, ok bool) {
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	of, err := parseOpFlagsWith(fs, args, stderr)
	if err != nil {
		return "", of, false
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() != 0 || id == "" {
		usage()
		return "", of, false
	}
	return id, of, true
}
