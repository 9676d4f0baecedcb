package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"gatemq/admin"
	"gatemq/boltstore"
)

const messagesUsage = `usage: gatemq messages list --topic TOPIC [--from TIME] [--to TIME] [--limit N] [--after ID] [--newest|--oldest]
                             [-data-dir DIR | -config FILE] [-json]
       gatemq messages get ID [-data-dir DIR | -config FILE] [-json]

TIME is an RFC 3339 time (2026-03-01T12:00:00Z), a local date and time
(2026-03-01T12:00:00, 2026-03-01 12:00 or 2026-03-01), or a duration
meaning that long ago (90m, 24h). --topic may be a filter with + and #.
`

// messagesMain runs `gatemq messages list|get`: the message archive,
// through the running broker's admin socket, else read from the data
// directory.
func messagesMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, messagesUsage)
		return 2
	}
	switch args[0] {
	case "list":
		return messagesListMain(args[1:], stdout, stderr)
	case "get":
		return messagesGetMain(args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, messagesUsage)
	return 2
}

func messagesListMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("messages list", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(stderr, messagesUsage) }
	topic := fs.String("topic", "", "the `topic`, or a filter with + and #")
	from := fs.String("from", "", "list messages received at or after `TIME`")
	to := fs.String("to", "", "list messages received before `TIME`")
	limit := fs.Int("limit", admin.DefaultMessageLimit, fmt.Sprintf("messages in the page, 1 to %d", admin.MaxMessageLimit))
	after := fs.String("after", "", "continue after this message `ID` (a previous page's next)")
	newest := fs.Bool("newest", false, "newest first (the default)")
	oldest := fs.Bool("oldest", false, "oldest first")
	of, err := parseOpFlagsWith(fs, args, stderr)
	if err != nil {
		return 2
	}
	if fs.NArg() != 0 || *topic == "" || (*newest && *oldest) {
		fmt.Fprint(stderr, messagesUsage)
		return 2
	}
	v := url.Values{"topic": {*topic}, "limit": {strconv.Itoa(*limit)}, "order": {"newest"}}
	if *oldest {
		v.Set("order", "oldest")
	}
	if *after != "" {
		v.Set("after", *after)
	}
	now := time.Now()
	for _, f := range []struct{ name, val string }{{"from", *from}, {"to", *to}} {
		if f.val == "" {
			continue
		}
		t, err := parseWhen(f.val, now)
		if err != nil {
			fmt.Fprintf(stderr, "gatemq messages list: --%s: %v\n", f.name, err)
			return 2
		}
		v.Set(f.name, t.UTC().Format(time.RFC3339Nano))
	}
	page, err := askOrRead(of, "/api/v1/messages?"+v.Encode(), func() (admin.MessagePage, error) {
		return withArchive(of.dataDir, func(a *boltstore.Archive) (admin.MessagePage, error) {
			q, err := admin.ParseMessageQuery(v)
			if err != nil {
				return admin.MessagePage{}, err
			}
			return admin.ListMessages(a, q)
		})
	})
	if err != nil {
		fmt.Fprintf(stderr, "gatemq messages list: %v\n", err)
		return 1
	}
	if page.Corrupt > 0 {
		fmt.Fprintf(stderr, "gatemq messages list: %d corrupt record(s) skipped\n", page.Corrupt)
	}
	if of.json {
		return printJSON(stdout, page)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tTOPIC\tFROM\tQOS\tRETAIN\tBYTES\tPAYLOAD")
	for _, m := range page.Messages {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%v\t%d\t%s\n", m.ID, m.Time.Format(time.RFC3339Nano), m.Topic, m.From, m.QoS,
			m.Retain, m.PayloadBytes, preview(m.Payload, 40))
	}
	tw.Flush()
	if page.Next != "" {
		fmt.Fprintf(stdout, "next page: --after %s\n", page.Next)
	}
	return 0
}

func messagesGetMain(args []string, stdout, stderr io.Writer) int {
	id, of, ok := parseIDOpFlags("messages get", args, stderr, strings.TrimSuffix(messagesUsage, "\n"))
	if !ok {
		return 2
	}
	m, err := askOrRead(of, "/api/v1/messages/"+url.PathEscape(id), func() (admin.Message, error) {
		return withArchive(of.dataDir, func(a *boltstore.Archive) (admin.Message, error) { return admin.GetMessage(a, id) })
	})
	if err != nil {
		fmt.Fprintf(stderr, "gatemq messages get: %v\n", err)
		return 1
	}
	if of.json {
		return printJSON(stdout, m)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("id", m.ID)
	row("time", m.Time.Format(time.RFC3339Nano))
	row("topic", m.Topic)
	row("from", m.From)
	row("qos", m.QoS)
	row("retain", m.Retain)
	row("rule", m.Rule)
	if p := m.Properties; p != nil {
		if p.PayloadFormat != nil {
			row("payload format", *p.PayloadFormat)
		}
		if p.MessageExpiry != nil {
			row("message expiry", fmt.Sprintf("%ds (expires %s)", *p.MessageExpiry, p.Expires.Format(time.RFC3339)))
		}
		if p.ContentType != "" {
			row("content type", p.ContentType)
		}
		if p.ResponseTopic != "" {
			row("response topic", p.ResponseTopic)
		}
		if p.CorrelationData != nil {
			row("correlation data", preview(p.CorrelationData, 0))
		}
		for _, u := range p.UserProperties {
			row("user property", u.Key+"="+u.Value)
		}
	}
	row("payload bytes", m.PayloadBytes)
	tw.Flush()
	if printable(m.Payload) {
		fmt.Fprintf(stdout, "payload:\n%s\n", m.Payload)
	} else {
		fmt.Fprintf(stdout, "payload (hex):\n%s", hex.Dump(m.Payload))
	}
	return 0
}

// withArchive runs fn on the archive of a stopped broker's data
// directory, opened read-only.
func withArchive[T any](dataDir string, fn func(*boltstore.Archive) (T, error)) (T, error) {
	var zero T
	dir := filepath.Join(dataDir, "archive")
	a, err := boltstore.OpenArchive(dir, &boltstore.ArchiveOptions{ReadOnly: true})
	switch {
	case errors.Is(err, boltstore.ErrLocked):
		return zero, fmt.Errorf("the archive in %s is in use by a running broker whose admin socket does not answer; stop it to read the data directory directly", dataDir)
	case err != nil:
		return zero, fmt.Errorf("no broker answers and no message archive in %s: %w", dataDir, err)
	}
	defer a.Close()
	return fn(a)
}

// parseWhen reads a --from or --to time: RFC 3339, a local date and
// time, a local date, or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-03-01T12:00:00Z), a local time (2026-03-01 12:00) or a duration ago (90m)", s)
}

// printable reports whether b is UTF-8 text without control characters
// other than tabs and newlines.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

// preview shows a payload in a table cell: text up to n runes (all with
// n 0) on one line, else hex.
func preview(b []byte, n int) string {
	if !printable(b) {
		if n > 0 && len(b) > n/2 {
			return hex.EncodeToString(b[:n/2]) + "…"
		}
		return hex.EncodeToString(b)
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if r := []rune(s); n > 0 && len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
