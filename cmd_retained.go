package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"gatemq/admin"
	"gatemq/broker"
	"gatemq/broker/packet"
	"gatemq/internal/topic"
)

const retainedUsage = `usage: gatemq retained list [-topic FILTER] [-data-dir DIR | -config FILE] [-json]
       gatemq retained get TOPIC [-data-dir DIR | -config FILE] [-json]
       gatemq retained delete TOPIC [-data-dir DIR | -config FILE] [-json]

With a running broker (its admin socket answers) they act on its retained
messages (delete: in memory and in the store, as an empty retained PUBLISH
would); without one, on the data directory's store. get prints the payload
as text when it is printable UTF-8, else as a hex dump; -json gives it in
base64 (payload_base64), and as text (payload_text) when printable.
`

// retainedMain runs `gatemq retained list|get|delete`.
func retainedMain(args []string, stdout, stderr io.Writer) int {
	return runSubcommand(args, retainedUsage, map[string]opCommand{
		"list": retainedList, "get": retainedGet, "delete": retainedDelete}, stdout, stderr)
}

func retainedList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("retained list", flag.ContinueOnError)
	filter := fs.String("topic", "", "list only the topics matching this `filter` (default: all but $SYS, as \"#\"; \"$SYS/#\" lists those)")
	of, _, ok := parseOpArgs(fs, args, 0, 0, retainedUsage, stderr)
	if !ok {
		return 2
	}
	path := "/api/v1/retained"
	if *filter != "" {
		path += "?topic=" + url.QueryEscape(*filter)
	}
	rows, err := askOrRead(of, path, func() ([]admin.Retained, error) {
		msgs, err := savedRetained(of.dataDir, *filter, "", stderr)
		if err != nil {
			return nil, err
		}
		rows := make([]admin.Retained, 0, len(msgs))
		for _, m := range msgs {
			rows = append(rows, admin.NewRetainedDetail(m).Retained)
		}
		return rows, nil
	})
	return of.report("retained list", err, rows, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tQOS\tBYTES\tFROM\tSTORED\tEXPIRES")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", r.Topic, r.QoS, r.Bytes, r.From, timeOr(r.Stored, "-"), timeOr(r.Expires, "never"))
		}
		tw.Flush()
	}, stdout, stderr)
}

func timeOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

// savedRetained reads a stopped broker's retained messages: those whose
// topic matches filter, or is only, or all, by topic; expired ones are
// left out.
func savedRetained(dir, filter, only string, stderr io.Writer) ([]broker.RetainedMessage, error) {
	if filter != "" {
		if err := packet.ValidTopicFilter(filter); err != nil {
			return nil, fmt.Errorf("%q: %w", filter, err)
		}
	}
	st, err := openStoreReadOnly(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	now := time.Now()
	var out []broker.RetainedMessage
	err = st.LoadRetained(func(t string, v []byte) error {
		if (filter != "" && !topic.Match(filter, t)) || (only != "" && t != only) {
			return nil
		}
		m, err := broker.DecodeStoredRetained(t, v)
		if err != nil {
			fmt.Fprintf(stderr, "gatemq retained: %q: %v\n", t, err)
			return nil
		}
		if m.Expires.IsZero() || m.Expires.After(now) {
			out = append(out, m)
		}
		return nil
	}, func(t string, err error) {
		fmt.Fprintf(stderr, "gatemq retained: %q: %v\n", t, err)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out, err
}

func retainedGet(args []string, stdout, stderr io.Writer) int {
	of, pos, ok := parseOpArgs(flag.NewFlagSet("retained get", flag.ContinueOnError), args, 1, 1, retainedUsage, stderr)
	if !ok {
		return 2
	}
	topic := pos[0]
	d, err := askOrRead(of, "/api/v1/retained/"+pathSegment(topic), func() (admin.RetainedDetail, error) {
		msgs, err := savedRetained(of.dataDir, "", topic, stderr)
		switch {
		case err != nil:
			return admin.RetainedDetail{}, err
		case len(msgs) == 0:
			return admin.RetainedDetail{}, fmt.Errorf("no retained message on %s", topic)
		}
		return admin.NewRetainedDetail(msgs[0]), nil
	})
	return of.report("retained get", err, d, func(w io.Writer) { printRetained(w, d) }, stdout, stderr)
}

// printRetained prints a retained message's details, then its payload.
func printRetained(w io.Writer, d admin.RetainedDetail) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "topic:\t%s\n", d.Topic)
	fmt.Fprintf(tw, "qos:\t%d\n", d.QoS)
	fmt.Fprintf(tw, "bytes:\t%d\n", d.Bytes)
	fmt.Fprintf(tw, "from:\t%s\n", d.From)
	fmt.Fprintf(tw, "stored:\t%s\n", timeOr(d.Stored, "unknown"))
	fmt.Fprintf(tw, "expires:\t%s\n", timeOr(d.Expires, "never"))
	if p := d.Properties; p != nil {
		if p.PayloadFormat != nil {
			fmt.Fprintf(tw, "payload format:\t%d\n", *p.PayloadFormat)
		}
		if p.ContentType != "" {
			fmt.Fprintf(tw, "content type:\t%s\n", p.ContentType)
		}
		if p.ResponseTopic != "" {
			fmt.Fprintf(tw, "response topic:\t%s\n", p.ResponseTopic)
		}
		if p.CorrelationData != nil {
			fmt.Fprintf(tw, "correlation data:\t%s (hex)\n", hex.EncodeToString(p.CorrelationData))
		}
		for _, u := range p.UserProperties {
			fmt.Fprintf(tw, "user property:\t%q = %q\n", u.Key, u.Value)
		}
	}
	tw.Flush()
	switch {
	case d.PayloadText != nil:
		fmt.Fprintf(w, "payload (text):\n%s", *d.PayloadText)
		if !strings.HasSuffix(*d.PayloadText, "\n") {
			fmt.Fprintln(w)
		}
	default:
		fmt.Fprintf(w, "payload (hex dump):\n%s", hex.Dump(d.PayloadBase64))
	}
}

func retainedDelete(args []string, stdout, stderr io.Writer) int {
	of, pos, ok := parseOpArgs(flag.NewFlagSet("retained delete", flag.ContinueOnError), args, 1, 1, retainedUsage, stderr)
	if !ok {
		return 2
	}
	topic := pos[0]
	var res map[string]string
	err := of.client().do(http.MethodDelete, "/api/v1/retained/"+pathSegment(topic), &res)
	if errors.Is(err, errNoBroker) {
		res = map[string]string{"deleted": topic}
		err = deleteSavedRetained(of.dataDir, topic)
	}
	return of.report("retained delete", err, res, func(w io.Writer) {
		fmt.Fprintf(w, "deleted the retained message on %s\n", topic)
	}, stdout, stderr)
}

// deleteSavedRetained removes a retained message from a stopped broker's
// store.
func deleteSavedRetained(dir, topic string) error {
	st, err := openStoreMeta(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	found := false
	if err := st.LoadRetained(func(t string, _ []byte) error {
		found = found || t == topic
		return nil
	}, nil); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no retained message on %s", topic)
	}
	errc := make(chan error, 1)
	st.DeleteRetained(topic, func(err error) { errc <- err })
	if err := <-errc; err != nil {
		return err
	}
	return st.Close()
}
