package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"gatemq/admin"
	"gatemq/boltstore"
	"gatemq/broker"
)

const presetsUsage = `usage: gatemq presets list [CLIENT_ID] [-data-dir DIR | -config FILE] [-json]
       gatemq presets set CLIENT_ID FILTER QOS [-no-local] [-retain-as-published] [-retain-handling N] [-data-dir DIR | -config FILE] [-json]
       gatemq presets delete CLIENT_ID [FILTER] [-data-dir DIR | -config FILE] [-json]

Preset subscriptions are made by the broker for a client when it connects.
With a running broker (its admin socket answers) a change applies at once
to a connected client; without one, the data directory's store is read or
changed directly, and changes apply at the client's next connection.
list shows the stored presets and the config file's [[preset_subscription]]
rules (SOURCE stored or config); delete removes stored presets only.
`

// presetsMain runs `gatemq presets list|set|delete`.
func presetsMain(args []string, stdout, stderr io.Writer) int {
	return runSubcommand(args, presetsUsage, map[string]opCommand{
		"list": presetsList, "set": presetsSet, "delete": presetsDelete}, stdout, stderr)
}

// An opCommand runs an operator subcommand with its arguments.
type opCommand func(args []string, stdout, stderr io.Writer) int

// runSubcommand runs the subcommand args[0] names, or prints usage (to
// stdout when asked for with -h, exit 0; else to stderr, exit 2).
func runSubcommand(args []string, usage string, cmds map[string]opCommand, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if cmd, ok := cmds[args[0]]; ok {
			return cmd(args[1:], stdout, stderr)
		}
		switch args[0] {
		case "-h", "-help", "--help", "help":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	fmt.Fprint(stderr, usage)
	return 2
}

// parseOpArgs parses an operator command's positional arguments and
// flags, in any order: the arguments before the first flag, then those
// after the flags. It returns the arguments, or false when the flags or
// their number are wrong (the usage has been printed).
func parseOpArgs(fs *flag.FlagSet, args []string, min, max int, usage string, stderr io.Writer) (opFlags, []string, bool) {
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	of, err := parseOpFlagsWith(fs, args, stderr)
	if err != nil {
		return opFlags{}, nil, false
	}
	pos = append(pos, fs.Args()...)
	if len(pos) < min || len(pos) > max {
		fmt.Fprint(stderr, usage)
		return opFlags{}, nil, false
	}
	return of, pos, true
}

// report ends an operator command: err, if not nil, goes to stderr (exit
// 1); else v is printed as JSON with -json, or by text.
func (of opFlags) report(name string, err error, v any, text func(io.Writer), stdout, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintf(stderr, "gatemq %s: %v\n", name, err)
		return 1
	}
	if of.json {
		return printJSON(stdout, v)
	}
	text(stdout)
	return 0
}

// pathSegment escapes s as one segment of an API path: "/" included,
// and "." and ".." too, which a server would otherwise clean away.
func pathSegment(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ".", "%2E")
}

// openStoreMeta opens DATA_DIR/ds for the commands that change a stopped
// broker's presets and retained messages.
func openStoreMeta(dir string) (*boltstore.Store, error) {
	st, err := boltstore.Open(filepath.Join(dir, "ds"), &boltstore.Options{MetaOnly: true})
	if errors.Is(err, boltstore.ErrLocked) {
		return nil, fmt.Errorf("the store in %s is in use by a running broker whose admin socket does not answer; stop it to change the data directory directly", dir)
	}
	return st, err
}

func presetsList(args []string, stdout, stderr io.Writer) int {
	of, pos, ok := parseOpArgs(flag.NewFlagSet("presets list", flag.ContinueOnError), args, 0, 1, presetsUsage, stderr)
	if !ok {
		return 2
	}
	var id string
	path := "/api/v1/presets"
	if len(pos) == 1 {
		id = pos[0]
		path += "/" + pathSegment(id)
	}
	rows, err := askOrRead(of, path, func() ([]admin.Preset, error) { return savedPresets(of, id, stderr) })
	return of.report("presets list", err, rows, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tFILTER\tQOS\tOPTIONS\tSOURCE")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.ClientID, r.Filter, r.QoS, presetOptions(r), r.Source)
		}
		tw.Flush()
	}, stdout, stderr)
}

// presetOptions describes a preset's options other than QoS.
func presetOptions(p admin.Preset) string {
	var opts []string
	if p.NoLocal {
		opts = append(opts, "no-local")
	}
	if p.RetainAsPublished {
		opts = append(opts, "retain-as-published")
	}
	opts = append(opts, "retain-handling="+strconv.Itoa(int(p.RetainHandling)))
	return strings.Join(opts, ",")
}

// savedPresets lists a stopped broker's stored presets, with the rules
// of the -config file.
func savedPresets(of opFlags, clientID string, stderr io.Writer) ([]admin.Preset, error) {
	st, err := openStoreReadOnly(of.dataDir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stored, err := broker.LoadStoredPresets(st, func(id, filter string, err error) {
		fmt.Fprintf(stderr, "gatemq presets list: %q %q: %v\n", id, filter, err)
	})
	if err != nil {
		return nil, err
	}
	return admin.NewPresets(broker.ListPresets(presetRules(of.cfg), stored, clientID, "")), nil
}

func presetsSet(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("presets set", flag.ContinueOnError)
	noLocal := fs.Bool("no-local", false, "the client does not get its own messages (not on $share/ filters)")
	rap := fs.Bool("retain-as-published", false, "forward the RETAIN flag as published (v5 clients)")
	rh := fs.Uint("retain-handling", 0, "0: retained messages at every connection, 1: when the subscription is new, 2: never")
	of, pos, ok := parseOpArgs(fs, args, 3, 3, presetsUsage, stderr)
	if !ok {
		return 2
	}
	qos, err := strconv.ParseUint(pos[2], 10, 8)
	if err != nil || qos > 2 || *rh > 2 {
		fmt.Fprintf(stderr, "gatemq presets set: QoS %q and retain handling %d must be 0, 1 or 2\n", pos[2], *rh)
		return 2
	}
	id := pos[0]
	req := admin.PresetRequest{Filter: pos[1], QoS: byte(qos), NoLocal: *noLocal, RetainAsPublished: *rap, RetainHandling: byte(*rh)}
	var res admin.PresetChange
	err = of.client().send(http.MethodPut, "/api/v1/presets/"+pathSegment(id), req, &res)
	if errors.Is(err, errNoBroker) {
		res = admin.PresetChange{ClientID: id, Filter: req.Filter}
		var st *boltstore.Store
		if st, err = openStoreMeta(of.dataDir); err == nil {
			err = broker.StorePreset(st, id, req.Preset())
			if cerr := st.Close(); err == nil {
				err = cerr
			}
		}
	}
	return of.report("presets set", err, res, func(w io.Writer) {
		fmt.Fprintf(w, "preset %s %s (qos %d) set: %s\n", id, req.Filter, req.QoS, whenApplied(res.Applied))
	}, stdout, stderr)
}

func whenApplied(applied bool) string {
	if applied {
		return "applied to the connected client"
	}
	return "applies at the client's next connection"
}

func presetsDelete(args []string, stdout, stderr io.Writer) int {
	of, pos, ok := parseOpArgs(flag.NewFlagSet("presets delete", flag.ContinueOnError), args, 1, 2, presetsUsage, stderr)
	if !ok {
		return 2
	}
	id, filter := pos[0], ""
	if len(pos) == 2 {
		filter = pos[1]
	}
	path := "/api/v1/presets/" + pathSegment(id)
	if filter != "" {
		path += "?filter=" + url.QueryEscape(filter)
	}
	var res admin.PresetChange
	err := of.client().do(http.MethodDelete, path, &res)
	if errors.Is(err, errNoBroker) {
		res = admin.PresetChange{ClientID: id, Filter: filter}
		res.Removed, err = deleteSavedPresets(of.dataDir, id, filter)
	}
	return of.report("presets delete", err, res, func(w io.Writer) {
		fmt.Fprintf(w, "%d preset(s) of %s deleted: %s\n", res.Removed, id, whenApplied(res.Applied))
	}, stdout, stderr)
}

// deleteSavedPresets removes stored presets from a stopped broker's
// store and returns how many.
func deleteSavedPresets(dir, clientID, filter string) (int, error) {
	st, err := openStoreMeta(dir)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	stored, err := broker.LoadStoredPresets(st, nil)
	if err != nil {
		return 0, err
	}
	n := len(stored[clientID])
	if filter != "" {
		n = 0
		if _, ok := stored[clientID][filter]; ok {
			n = 1
		}
	}
	if n == 0 {
		if filter != "" {
			return 0, fmt.Errorf("no stored preset subscription for %s to %s", clientID, filter)
		}
		return 0, fmt.Errorf("no stored preset subscription for %s", clientID)
	}
	if err := broker.DeleteStoredPreset(st, clientID, filter); err != nil {
		return 0, err
	}
	return n, st.Close()
}
