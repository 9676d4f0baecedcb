package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"gatemq/admin"
	"gatemq/boltstore"
	"gatemq/session"
)

// openStoreReadOnly opens DATA_DIR/ds for the operator commands when no
// broker answers on the admin socket.
func openStoreReadOnly(dir string) (*boltstore.Store, error) {
	st, err := boltstore.Open(filepath.Join(dir, "ds"), &boltstore.Options{ReadOnly: true})
	if err != nil {
		if errors.Is(err, boltstore.ErrLocked) {
			return nil, fmt.Errorf("the store in %s is in use by a running broker whose admin socket does not answer; stop it to read the data directory directly", dir)
		}
		return nil, err
	}
	return st, nil
}

// dsMain runs `gatemq ds info`: from the running broker through its admin
// socket, else from the data directory.
func dsMain(args []string, stdout, stderr io.Writer) int {
	const usageLine = "usage: gatemq ds info [-data-dir DIR | -config FILE] [-json]"
	if len(args) == 0 || args[0] != "info" {
		fmt.Fprintln(stderr, usageLine)
		return 2
	}
	of, err := parseOpFlags("ds info", args[1:], stderr)
	if err != nil {
		return 2
	}
	var in admin.DSInfo
	err = of.client().get("/api/v1/ds", &in)
	if errors.Is(err, errNoBroker) {
		var st *boltstore.Store
		if st, err = openStoreReadOnly(of.dataDir); err == nil {
			in = admin.NewDSInfo(st.Info())
			st.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "gatemq ds info: %v\n", err)
		return 1
	}
	if of.json {
		return printJSON(stdout, in)
	}
	fmt.Fprintf(stdout, "store:     %s\nsite:      %s\nshards:    %d\nstreams:   %d\nsessions:  %d\nretained:  %d\nclients:   %d (%d online)\nbytes:     %d\n\n",
		in.Dir, in.Site, in.Shards, in.Streams, in.Sessions, in.Retained, in.Clients, in.Online, in.Bytes)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GENERATION\tFROM\tTO\tMESSAGES\tSTREAMS\tBYTES")
	for _, g := range in.Generations {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\n", g.Generation, g.From.UTC().Format(time.RFC3339), g.To.UTC().Format(time.RFC3339),
			g.Messages, g.Streams, g.Bytes)
	}
	tw.Flush()
	return 0
}

// sessionsMain runs `gatemq sessions list`: every session from the
// running broker through its admin socket, else the durable sessions
// saved in the data directory.
func sessionsMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprintln(stderr, "usage: gatemq sessions list [-data-dir DIR | -config FILE] [-json]")
		return 2
	}
	of, err := parseOpFlags("sessions list", args[1:], stderr)
	if err != nil {
		return 2
	}
	var rows []admin.Session
	err = of.client().get("/api/v1/sessions", &rows)
	if errors.Is(err, errNoBroker) {
		rows, err = savedSessions(of.dataDir, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gatemq sessions list: %v\n", err)
		return 1
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ClientID < rows[j].ClientID })
	if of.json {
		return printJSON(stdout, rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tSTATE\tEXPIRY\tLAST SEEN\tINFLIGHT\tSUBSCRIPTIONS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%ds\t%s\t%d\t%v\n", r.ClientID, r.State, r.ExpirySeconds, r.LastSeen.UTC().Format(time.RFC3339), r.Inflight, r.Subscriptions)
	}
	tw.Flush()
	return 0
}

// savedSessions reads the durable sessions of a stopped broker.
func savedSessions(dir string, stderr io.Writer) ([]admin.Session, error) {
	st, err := openStoreReadOnly(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rows := []admin.Session{}
	err = st.LoadSessions(func(id string, parts map[string][]byte) error {
		saved, err := session.UnmarshalSaved(parts["state"])
		if err != nil {
			return nil
		}
		r := admin.Session{ClientID: id, State: "offline", Durable: true, ExpirySeconds: saved.Expiry,
			LastSeen: time.Unix(0, saved.LastSeen).UTC(), Subscriptions: []string{}}
		for _, sub := range saved.Subs {
			r.Subscriptions = append(r.Subscriptions, admin.FormatSubscription(sub.Filter, sub.QoS))
		}
		if es, err := session.UnmarshalInflight(parts["inflight"]); err == nil {
			r.Inflight = len(es)
		}
		rows = append(rows, r)
		return nil
	}, func(id string, err error) {
		fmt.Fprintf(stderr, "gatemq sessions list: %q: %v\n", id, err)
	})
	return rows, err
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

// opFlags are the flags of the operator commands.
type opFlags struct {
	dataDir  string
	checkDir bool     // a broker found outside dataDir must serve it (apiClient.find)
	sockets  []string // where to look for the running broker (adminSockets)
	json     bool
}

// parseOpFlags parses -config FILE or -data-dir DIR (the data directory,
// and the admin sockets: [admin] socket, else DATA_DIR/admin.sock and
// /run/gatemq/admin.sock) and -json. Errors have been printed.
func parseOpFlags(name string, args []string, stderr io.Writer) (opFlags, error) {
	return parseOpFlagsWith(flag.NewFlagSet(name, flag.ContinueOnError), args, stderr)
}
