package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"gatemq/admin"
	"gatemq/boltstore"
	"gatemq/broker"
)

// clientsMain runs `gatemq clients [-state online|offline]` and `gatemq
// clients show CLIENT_ID`: client status records from the running broker
// through its admin socket, else from the data directory.
func clientsMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "show" {
		return clientShowMain(args[1:], stdout, stderr)
	}
	const usageLine = "usage: gatemq clients [-state online|offline] [-data-dir DIR | -config FILE] [-json]\n" +
		"       gatemq clients show CLIENT_ID [-data-dir DIR | -config FILE] [-json]"
	fs := flag.NewFlagSet("clients", flag.ContinueOnError)
	state := fs.String("state", "", "list only the clients `online` or offline (default: every one)")
	of, err := parseOpFlagsWith(fs, args, stderr)
	if err != nil {
		return 2
	}
	f, ok := broker.ParseStatusFilter(*state)
	if !ok || fs.NArg() != 0 {
		fmt.Fprintln(stderr, usageLine)
		return 2
	}
	rows, err := askOrRead(of, "/api/v1/clients?state="+url.QueryEscape(f.String()), func() ([]admin.ClientStatus, error) {
		return savedClientStatuses(of.dataDir, f, stderr)
	})
	if err != nil {
		fmt.Fprintf(stderr, "gatemq clients: %v\n", err)
		return 1
	}
	if of.json {
		return printJSON(stdout, rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tSTATE\tONLINE AT\tOFFLINE AT\tREASON\tUSERNAME\tREMOTE\tPROTOCOL\tKEEPALIVE\tCLEAN START")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%ds\t%v\n", r.ClientID, r.State, formatTime(&r.OnlineAt),
			formatTime(r.OfflineAt), dash(r.Reason), dash(r.Username), r.Remote, r.ProtocolVersion, r.KeepAlive, r.CleanStart)
	}
	tw.Flush()
	return 0
}

// clientShowMain runs `gatemq clients show CLIENT_ID`.
func clientShowMain(args []string, stdout, stderr io.Writer) int {
	id, of, ok := parseIDOpFlags("clients show", args, stderr, "usage: gatemq clients show CLIENT_ID [-data-dir DIR | -config FILE] [-json]")
	if !ok {
		return 2
	}
	r, err := askOrRead(of, "/api/v1/clients/"+url.PathEscape(id), func() (admin.ClientStatus, error) {
		return savedClientStatus(of.dataDir, id)
	})
	if err != nil {
		fmt.Fprintf(stderr, "gatemq clients show: %v\n", err)
		return 1
	}
	if of.json {
		return printJSON(stdout, r)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 1, ' ', 0)
	for _, kv := range [...][2]string{
		{"client id", r.ClientID},
		{"state", r.State},
		{"online at", formatTime(&r.OnlineAt)},
		{"offline at", formatTime(r.OfflineAt)},
		{"disconnect reason", dash(r.Reason)},
		{"site", r.Site},
		{"remote", r.Remote},
		{"protocol version", r.ProtocolVersion},
		{"username", dash(r.Username)},
		{"keepalive", fmt.Sprintf("%ds", r.KeepAlive)},
		{"clean start", fmt.Sprint(r.CleanStart)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	tw.Flush()
	return 0
}

// savedClientStatuses reads the status records of a stopped broker. The
// online ones come from the store's index of its own site: clients that
// were connected when the broker stopped without recording it.
func savedClientStatuses(dir string, f broker.StatusFilter, stderr io.Writer) ([]admin.ClientStatus, error) {
	st, err := openStoreReadOnly(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rows := []admin.ClientStatus{}
	keep := func(r boltstore.ClientStatus) error {
		if f == broker.StatusAll || r.Online == (f == broker.StatusOnline) {
			rows = append(rows, admin.NewClientStatus(r))
		}
		return nil
	}
	bad := func(id string, err error) { fmt.Fprintf(stderr, "gatemq clients: %q: %v\n", id, err) }
	if f == broker.StatusOnline {
		err = st.OnlineStatuses(st.Site(), keep, bad)
	} else {
		err = st.Statuses(keep, bad)
	}
	return rows, err
}

// savedClientStatus reads one status record of a stopped broker.
func savedClientStatus(dir, id string) (admin.ClientStatus, error) {
	st, err := openStoreReadOnly(dir)
	if err != nil {
		return admin.ClientStatus{}, err
	}
	defer st.Close()
	r, ok, err := st.Status(id)
	if err != nil {
		return admin.ClientStatus{}, err
	}
	if !ok {
		return admin.ClientStatus{}, fmt.Errorf("no status for client: %s", id)
	}
	return admin.NewClientStatus(r), nil
}

func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
