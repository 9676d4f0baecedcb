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

	"gatemq/boltstore"
	"gatemq/conf"
	"gatemq/session"
)

// openStoreReadOnly opens DATA_DIR/ds for the operator commands. The
// flags are -data-dir DIR or -config FILE (its data_dir).
func openStoreReadOnly(name string, args []string, stderr io.Writer) (*boltstore.Store, *bool, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "read data_dir from this TOML `file`")
	dataDir := fs.String("data-dir", "", "data `directory` (default ./data)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	dir := "./data"
	if *configPath != "" {
		cfg, err := conf.Load(*configPath)
		if err != nil {
			return nil, nil, err
		}
		dir = cfg.DataDir
	}
	if *dataDir != "" {
		dir = *dataDir
	}
	st, err := boltstore.Open(filepath.Join(dir, "ds"), &boltstore.Options{ReadOnly: true})
	if err != nil {
		if errors.Is(err, boltstore.ErrLocked) {
			return nil, nil, fmt.Errorf("the store in %s is in use by a running broker; stop it to read the data directory directly", dir)
		}
		return nil, nil, err
	}
	return st, asJSON, nil
}

// dsMain runs `gatemq ds info`.
func dsMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "info" {
		fmt.Fprintln(stderr, "usage: gatemq ds info [-data-dir DIR | -config FILE] [-json]")
		return 2
	}
	st, asJSON, err := openStoreReadOnly("ds info", args[1:], stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gatemq ds info: %v\n", err)
		return 1
	}
	defer st.Close()
	in := st.Info()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(dsInfoJSON(in)); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "store:     %s\nsite:      %s\nshards:    %d\nstreams:   %d\nsessions:  %d\nretained:  %d\nbytes:     %d\n\n",
		in.Dir, in.Site, in.Shards, in.Streams, in.Sessions, in.Retained, in.Bytes)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GENERATION\tFROM\tTO\tMESSAGES\tSTREAMS\tBYTES")
	for _, g := range in.Generations {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\n", g.Gen, g.Start.UTC().Format(time.RFC3339), g.End.UTC().Format(time.RFC3339),
			g.Messages, g.Streams, g.Bytes)
	}
	tw.Flush()
	return 0
}

func dsInfoJSON(in boltstore.Info) any {
	type gen struct {
		Generation uint32    `json:"generation"`
		From       time.Time `json:"from"`
		To         time.Time `json:"to"`
		Messages   uint64    `json:"messages"`
		Streams    int       `json:"streams"`
		Bytes      int64     `json:"bytes"`
		File       string    `json:"file"`
	}
	out := struct {
		Dir         string `json:"dir"`
		Site        string `json:"site"`
		Shards      int    `json:"shards"`
		Streams     int    `json:"streams"`
		Sessions    int    `json:"sessions"`
		Retained    int    `json:"retained"`
		Bytes       int64  `json:"bytes"`
		Generations []gen  `json:"generations"`
	}{in.Dir, in.Site.String(), in.Shards, in.Streams, in.Sessions, in.Retained, in.Bytes, nil}
	for _, g := range in.Generations {
		out.Generations = append(out.Generations, gen{uint32(g.Gen), g.Start.UTC(), g.End.UTC(), g.Messages, g.Streams, g.Bytes, g.File})
	}
	return out
}

// sessionsMain runs `gatemq sessions list`.
func sessionsMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprintln(stderr, "usage: gatemq sessions list [-data-dir DIR | -config FILE] [-json]")
		return 2
	}
	st, asJSON, err := openStoreReadOnly("sessions list", args[1:], stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gatemq sessions list: %v\n", err)
		return 1
	}
	defer st.Close()
	type row struct {
		ClientID      string    `json:"client_id"`
		State         string    `json:"state"`
		Durable       bool      `json:"durable"`
		ExpirySeconds uint32    `json:"expiry_seconds"`
		LastSeen      time.Time `json:"last_seen"`
		Subscriptions []string  `json:"subscriptions"`
		Inflight      int       `json:"inflight"`
	}
	var rows []row
	err = st.LoadSessions(func(id string, parts map[string][]byte) error {
		saved, err := session.UnmarshalSaved(parts["state"])
		if err != nil {
			return nil
		}
		r := row{ClientID: id, State: "offline", Durable: true, ExpirySeconds: saved.Expiry, LastSeen: time.Unix(0, saved.LastSeen).UTC()}
		for _, sub := range saved.Subs {
			r.Subscriptions = append(r.Subscriptions, fmt.Sprintf("%s (qos %d)", sub.Filter, sub.QoS))
		}
		if es, err := session.UnmarshalInflight(parts["inflight"]); err == nil {
			r.Inflight = len(es)
		}
		rows = append(rows, r)
		return nil
	}, func(id string, err error) {
		fmt.Fprintf(stderr, "gatemq sessions list: %q: %v\n", id, err)
	})
	if err != nil {
		fmt.Fprintf(stderr, "gatemq sessions list: %v\n", err)
		return 1
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ClientID < rows[j].ClientID })
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tSTATE\tEXPIRY\tLAST SEEN\tINFLIGHT\tSUBSCRIPTIONS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%ds\t%s\t%d\t%v\n", r.ClientID, r.State, r.ExpirySeconds, r.LastSeen.Format(time.RFC3339), r.Inflight, r.Subscriptions)
	}
	tw.Flush()
	return 0
}
