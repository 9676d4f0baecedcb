package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/admin"
	"gatemq/conf"
	"gatemq/internal/testkit"
)

// The message archive end to end: the real binary, real clients
// (mosquitto_pub for 3.1.1 and v5 properties, paho.golang for v5), and
// `gatemq messages` both through the admin socket and from the data
// directory after the broker stopped or was killed.

// archiveBroker starts the binary with the given [[archive]] tables on
// dir; it returns the command and its MQTT address.
func archiveBroker(t *testing.T, dir, rules string) (*exec.Cmd, string) {
	t.Helper()
	cfg := filepath.Join(dir, "gatemq.toml")
	if err := os.WriteFile(cfg, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testkit.FreeAddr(t)
	cmd := exec.Command(buildBinary(t), "-config", cfg, "-listen", addr, "-data-dir", dir)
	runBroker(t, cmd, addr)
	return cmd, addr
}

// pahoClient connects a paho.golang v5 client.
func pahoClient(t *testing.T, addr, id string) *paho.Client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{ClientID: id, Conn: nc})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	t.Cleanup(func() { nc.Close() })
	return c
}

// publishSeq publishes the payloads prefix0..prefix(n-1) on topic at QoS
// 1, each waiting for its PUBACK.
func publishSeq(t *testing.T, c *paho.Client, topic, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := publishQoS1(c, topic, []byte(prefix+strconv.Itoa(i)), 5*time.Second); err != nil {
			t.Fatalf("publish %s %d: %v", topic, i, err)
		}
	}
}

// publishQoS1 publishes one message and waits up to timeout for its
// PUBACK.
func publishQoS1(c *paho.Client, topic string, payload []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
	return err
}

// messagesCmd runs `gatemq messages ARGS -data-dir dir` and returns its
// standard output; it fails the test on a non-zero exit.
func messagesCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := tryMessagesCmd(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tryMessagesCmd(dir string, args ...string) (string, error) {
	bin, err := gatemqBin()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, append(append([]string{"messages"}, args...), "-data-dir", dir)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("gatemq messages %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		return stdout.String(), fmt.Errorf("gatemq messages %s: stderr: %s", strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), nil
}

// listPage runs `gatemq messages list ARGS -json`.
func listPage(t *testing.T, dir string, args ...string) admin.MessagePage {
	t.Helper()
	var p admin.MessagePage
	out := messagesCmd(t, dir, append(append([]string{"list"}, args...), "-json")...)
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("list %v: %v\n%s", args, err, out)
	}
	return p
}

// listAllPages follows the next cursors of a listing and checks that IDs
// and times run in the listing's order.
func listAllPages(t *testing.T, dir string, args ...string) []admin.Message {
	t.Helper()
	var all []admin.Message
	after := []string{}
	for range 1000 {
		p := listPage(t, dir, append(slices.Clone(args), after...)...)
		all = append(all, p.Messages...)
		if p.Next == "" {
			newest := !slices.Contains(args, "--oldest")
			for i := 1; i < len(all); i++ {
				a, _ := strconv.ParseUint(all[i-1].ID, 10, 64)
				b, _ := strconv.ParseUint(all[i].ID, 10, 64)
				if (b > a) == newest || a == b || all[i].Time.Before(all[i-1].Time) == !newest {
					t.Fatalf("listing %v out of order at %d: %s then %s", args, i, all[i-1].ID, all[i].ID)
				}
			}
			return all
		}
		after = []string{"--after", p.Next}
	}
	t.Fatalf("listing %v does not end", args)
	return nil
}

func payloadsOf(ms []admin.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Payload)
	}
	return out
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

func TestMain_MessagesArchive(t *testing.T) {
	mosqPub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not found (Debian's mosquitto-clients)")
	}
	dir := t.TempDir()
	cmd, addr := archiveBroker(t, dir, `
[[archive]]
topic = "sensors/#"
retention = "1h"

[[archive]]
topic = "alarms/+"
`)
	host, port, _ := net.SplitHostPort(addr)

	// A v5 message with every property, retained, from mosquitto_pub.
	out, err := exec.Command(mosqPub, "-h", host, "-p", port, "-V", "5", "-i", "mpub-v5", "-q", "1", "-r",
		"-t", "sensors/t1", "-m", "hello",
		"-D", "PUBLISH", "user-property", "site", "hall-7",
		"-D", "PUBLISH", "user-property", "line", "2",
		"-D", "PUBLISH", "content-type", "text/plain",
		"-D", "PUBLISH", "response-topic", "replies/t1",
		"-D", "PUBLISH", "correlation-data", "req-42",
		"-D", "PUBLISH", "message-expiry-interval", "300",
		"-D", "PUBLISH", "payload-format-indicator", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub v5: %v\n%s", err, out)
	}
	// Ten 3.1.1 messages, one a line, QoS 0.
	pub := exec.Command(mosqPub, "-h", host, "-p", port, "-V", "311", "-i", "mpub-311", "-q", "0", "-t", "sensors/t1", "-l")
	pub.Stdin = strings.NewReader(strings.Join(seq("v311-", 0, 10), "\n") + "\n")
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub 3.1.1: %v\n%s", err, out)
	}
	// v5 from paho: archived topics and one that is not. Nobody subscribes.
	pc := pahoClient(t, addr, "paho-1")
	publishSeq(t, pc, "sensors/t2", "p", 20)
	publishSeq(t, pc, "other/x", "o", 5)
	publishSeq(t, pc, "alarms/a", "a", 3)

	wantT1 := append([]string{"hello"}, seq("v311-", 0, 10)...)
	// The archive writes in its own batches: wait until everything is
	// listed (through the admin socket).
	testkit.WaitFor(t, 10*time.Second, func() error {
		if n := len(listPage(t, dir, "--topic", "sensors/#", "--limit", "1000").Messages); n != 31 {
			return fmt.Errorf("%d of 31 messages archived", n)
		}
		return nil
	})

	// A topic, pages of 3, both ways.
	t1 := listAllPages(t, dir, "--topic", "sensors/t1", "--limit", "3", "--oldest")
	if !slices.Equal(payloadsOf(t1), wantT1) {
		t.Fatalf("sensors/t1 oldest first: %v", payloadsOf(t1))
	}
	t1new := listAllPages(t, dir, "--topic", "sensors/t1", "--limit", "4")
	if got := payloadsOf(t1new); !slices.Equal(got, reversedStrings(wantT1)) {
		t.Fatalf("sensors/t1 newest first: %v", got)
	}
	// A filter, across topics and rules.
	all := listAllPages(t, dir, "--topic", "#", "--limit", "7", "--oldest")
	want := slices.Concat(wantT1, seq("p", 0, 20), seq("a", 0, 3))
	if !slices.Equal(payloadsOf(all), want) {
		t.Fatalf("# oldest first: %v", payloadsOf(all))
	}
	if p := listPage(t, dir, "--topic", "other/x"); len(p.Messages) != 0 {
		t.Fatalf("other/x has no rule, yet %d messages are archived", len(p.Messages))
	}
	// A time range: the 6th to the 10th message of sensors/t2.
	t2 := listAllPages(t, dir, "--topic", "sensors/t2", "--oldest", "--limit", "1000")
	from, to := t2[5].Time.Format(time.RFC3339Nano), t2[10].Time.Format(time.RFC3339Nano)
	if got := listAllPages(t, dir, "--topic", "sensors/t2", "--from", from, "--to", to, "--limit", "2", "--oldest"); !slices.Equal(payloadsOf(got), seq("p", 5, 10)) {
		t.Fatalf("range %s..%s oldest first: %v", from, to, payloadsOf(got))
	}
	if got := listAllPages(t, dir, "--topic", "sensors/+", "--from", from, "--to", to, "--limit", "2"); !slices.Equal(payloadsOf(got), reversedStrings(seq("p", 5, 10))) {
		t.Fatalf("range %s..%s newest first: %v", from, to, payloadsOf(got))
	}

	// Everything about one message.
	var hello admin.Message
	if err := json.Unmarshal([]byte(messagesCmd(t, dir, "get", t1[0].ID, "-json")), &hello); err != nil {
		t.Fatal(err)
	}
	checkHello(t, hello)
	table := messagesCmd(t, dir, "get", t1[0].ID)
	for _, s := range []string{"user property:     site=hall-7", "content type:      text/plain", "response topic:    replies/t1",
		"correlation data:  req-42", "message expiry:    300s", "payload:\nhello\n", "from:              mpub-v5"} {
		if !strings.Contains(table, s) {
			t.Errorf("gatemq messages get lacks %q:\n%s", s, table)
		}
	}
	if _, err := tryMessagesCmd(dir, "get", "12345"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("get of an unknown ID: %v", err)
	}

	// kill -9: what was listed is there, read from the data directory.
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if got := listAllPages(t, dir, "--topic", "#", "--limit", "9", "--oldest"); !slices.Equal(payloadsOf(got), want) {
		t.Fatalf("after kill -9, from the data directory: %v", payloadsOf(got))
	}
	var again admin.Message
	if err := json.Unmarshal([]byte(messagesCmd(t, dir, "get", t1[0].ID, "-json")), &again); err != nil {
		t.Fatal(err)
	}
	checkHello(t, again)

	// Restarted, it goes on with larger IDs.
	_, addr = archiveBroker(t, dir, `
[[archive]]
topic = "sensors/#"
retention = "1h"
`)
	pc = pahoClient(t, addr, "paho-2")
	publishSeq(t, pc, "sensors/t2", "q", 3)
	testkit.WaitFor(t, 10*time.Second, func() error {
		p := listPage(t, dir, "--topic", "sensors/t2", "--limit", "1")
		if len(p.Messages) != 1 || string(p.Messages[0].Payload) != "q2" {
			return fmt.Errorf("newest sensors/t2 is %v", payloadsOf(p.Messages))
		}
		return nil
	})
	got := listAllPages(t, dir, "--topic", "sensors/t2", "--oldest", "--limit", "1000")
	if !slices.Equal(payloadsOf(got), slices.Concat(seq("p", 0, 20), seq("q", 0, 3))) {
		t.Fatalf("after the restart: %v", payloadsOf(got))
	}
	// The removed alarms/+ rule's messages are still there.
	if got := listAllPages(t, dir, "--topic", "alarms/a", "--oldest"); !slices.Equal(payloadsOf(got), seq("a", 0, 3)) {
		t.Fatalf("a removed rule's messages: %v", payloadsOf(got))
	}
}

func checkHello(t *testing.T, m admin.Message) {
	t.Helper()
	p := m.Properties
	if m.Topic != "sensors/t1" || string(m.Payload) != "hello" || m.From != "mpub-v5" || m.QoS != 1 || !m.Retain ||
		m.Rule != "sensors/#" || m.PayloadBytes != 5 || p == nil {
		t.Fatalf("get: %+v", m)
	}
	users := []admin.UserProperty{{Key: "site", Value: "hall-7"}, {Key: "line", Value: "2"}}
	if p.ContentType != "text/plain" || p.ResponseTopic != "replies/t1" || string(p.CorrelationData) != "req-42" ||
		p.PayloadFormat == nil || *p.PayloadFormat != 1 || p.MessageExpiry == nil || *p.MessageExpiry != 300 ||
		p.Expires == nil || p.Expires.Sub(m.Time).Round(time.Second) != 300*time.Second || !slices.Equal(p.UserProperties, users) {
		t.Fatalf("properties: %+v", *p)
	}
}

func reversedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// A clean stop commits everything queued: every acknowledged message is
// in the archive, although a PUBACK does not wait for the archive.
func TestMain_MessagesArchiveCleanStopKeepsAll(t *testing.T) {
	dir := t.TempDir()
	cmd, addr := archiveBroker(t, dir, "[[archive]]\ntopic = \"#\"\n")
	pc := pahoClient(t, addr, "paho-stop")
	publishSeq(t, pc, "load/1", "m", 2000)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if got := listAllPages(t, dir, "--topic", "load/1", "--oldest", "--limit", "1000"); !slices.Equal(payloadsOf(got), seq("m", 0, 2000)) {
		t.Fatalf("after a clean stop %d of 2000 messages are archived", len(got))
	}
}

// A kill -9 while messages come: what the archive held before is
// there, what it holds is a prefix of what was published (it commits in
// order, nothing is torn), and it goes on after a restart.
func TestMain_MessagesArchiveSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	rules := "[[archive]]\ntopic = \"load/#\"\n"
	cmd, addr := archiveBroker(t, dir, rules)
	pc := pahoClient(t, addr, "paho-kill")
	publishSeq(t, pc, "load/1", "m", 500)
	var before int
	testkit.WaitFor(t, 10*time.Second, func() error {
		before = len(listAllPages(t, dir, "--topic", "load/1", "--limit", "1000"))
		if before != 500 {
			return fmt.Errorf("%d of 500 archived", before)
		}
		return nil
	})
	// Keep publishing while the broker is killed.
	done := make(chan int, 1)
	go func() {
		n := 500
		for ; n < 100000; n++ {
			if publishQoS1(pc, "load/1", []byte("m"+strconv.Itoa(n)), 2*time.Second) != nil {
				break
			}
		}
		done <- n
	}()
	// Kill it once the archive holds some of the load.
	testkit.WaitFor(t, 10*time.Second, func() error {
		p := listPage(t, dir, "--topic", "load/1", "--limit", "1")
		if len(p.Messages) == 1 {
			if n, _ := strconv.Atoi(strings.TrimPrefix(string(p.Messages[0].Payload), "m")); n >= 1500 {
				before = n + 1
				return nil
			}
		}
		return errors.New("the load is not archived yet")
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	acked := <-done
	got := payloadsOf(listAllPages(t, dir, "--topic", "load/1", "--oldest", "--limit", "1000"))
	if len(got) < before || len(got) > acked+1 || !slices.Equal(got, seq("m", 0, len(got))) {
		t.Fatalf("after kill -9: %d archived (%d before the load, %d acknowledged), want a prefix of the publish order", len(got), before, acked)
	}
	t.Logf("kill -9 during a QoS 1 load: %d messages acknowledged, %d archived", acked, len(got))
	_, addr = archiveBroker(t, dir, rules)
	pc = pahoClient(t, addr, "paho-kill-2")
	publishSeq(t, pc, "load/1", "after-", 1)
	testkit.WaitFor(t, 10*time.Second, func() error {
		p := listPage(t, dir, "--topic", "load/1", "--limit", "1")
		if len(p.Messages) != 1 || string(p.Messages[0].Payload) != "after-0" {
			return fmt.Errorf("newest is %v", payloadsOf(p.Messages))
		}
		return nil
	})
}

// max_bytes drops the oldest messages: the rule's files stay under the
// cap and what is kept is the newest, without a gap.
func TestMain_MessagesArchiveSizeCap(t *testing.T) {
	dir := t.TempDir()
	_, addr := archiveBroker(t, dir, "[[archive]]\ntopic = \"big/#\"\nmax_bytes = \"1MiB\"\n")
	pc := pahoClient(t, addr, "paho-big")
	pad := strings.Repeat("x", 1000)
	const n = 4000
	for i := range n {
		if err := publishQoS1(pc, "big/1", fmt.Appendf(nil, "%05d%s", i, pad), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		p := listPage(t, dir, "--topic", "big/1", "--limit", "1")
		if len(p.Messages) != 1 || !bytes.HasPrefix(p.Messages[0].Payload, fmt.Appendf(nil, "%05d", n-1)) {
			return errors.New("the last message is not archived yet")
		}
		return nil
	})
	var size int64
	files, _ := filepath.Glob(filepath.Join(dir, "archive", "r-*", "*"))
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	if size > 1<<20 || len(files) < 2 {
		t.Fatalf("the rule's %d files hold %d bytes, cap 1 MiB", len(files), size)
	}
	kept := listAllPages(t, dir, "--topic", "big/1", "--oldest", "--limit", "1000")
	if len(kept) == 0 || len(kept) >= n/2 {
		t.Fatalf("%d of %d 1 KiB messages kept under a 1 MiB cap", len(kept), n)
	}
	for i, m := range kept {
		if want := fmt.Sprintf("%05d", n-len(kept)+i); string(m.Payload[:5]) != want {
			t.Fatalf("kept message %d is %s, want %s: the oldest go first", i, m.Payload[:5], want)
		}
	}
}

// The example rule in scripts/gatemq.toml, uncommented, is valid.
func TestDefaultConfig_ArchiveExample(t *testing.T) {
	b, err := os.ReadFile("scripts/gatemq.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(b), "# [[archive]]")
	if !ok {
		t.Fatal("no [[archive]] example in scripts/gatemq.toml")
	}
	var toml strings.Builder
	toml.WriteString("[[archive]]\n")
	for line := range strings.SplitSeq(example, "\n") {
		if k, ok := strings.CutPrefix(line, "# "); ok && strings.Contains(k, " = ") {
			toml.WriteString(k + "\n")
		}
	}
	c, err := conf.Parse(strings.NewReader(toml.String()), "example")
	if err != nil {
		t.Fatalf("%v\n%s", err, toml.String())
	}
	if len(c.Archive) != 1 || c.Archive[0].Topic != "sensors/#" || c.Archive[0].Retention != conf.Duration(24*time.Hour) {
		t.Fatalf("example rule: %+v", c.Archive)
	}
}
