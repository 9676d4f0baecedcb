package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"gatemq/admin"
)

// peersMain runs `gatemq peers`: the members of the running broker's
// peer group. The group lives only in a running broker: there is nothing
// on disk to read without one.
func peersMain(args []string, stdout, stderr io.Writer) int {
	of, err := parseOpFlags("peers", args, stderr)
	if err != nil {
		return 2
	}
	var rows []admin.Peer
	if err := of.client().get("/api/v1/peers", &rows); err != nil {
		if errors.Is(err, errNoBroker) {
			err = fmt.Errorf("%w: the peer group exists only in a running broker", err)
		}
		fmt.Fprintf(stderr, "gatemq peers: %v\n", err)
		return 1
	}
	if of.json {
		return printJSON(stdout, rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tSTATE\tSINCE\tSITE\tVERSION")
	for _, p := range rows {
		name := p.Name
		if p.Self {
			name += " (self)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, p.Address, p.State, p.Since.UTC().Format(time.RFC3339), p.Site, p.Version)
	}
	tw.Flush()
	return 0
}
