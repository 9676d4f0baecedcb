package broker

import (
	"context"
	"fmt"
	"gatemq/internal/testkit"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Interoperability with Debian's mosquitto_pub and mosquitto_sub
// (package mosquitto-clients), run as real processes against an
// in-process broker. Each test skips when the binaries are missing.

// mosqVersions are the -V values of the mosquitto clients with the level
// each one sends in CONNECT.
var mosqVersions = []struct {
	flag string
	name string
}{
	{"31", "3.1"},
	{"311", "3.1.1"},
	{"5", "5.0"},
}

// mosqBin returns the path of a mosquitto client, or skips the test.
func mosqBin(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found (install Debian's mosquitto-clients to run interop tests): %v", name, err)
	}
	return p
}

// mosqProc is a running mosquitto client.
type mosqProc struct {
	cmd    *exec.Cmd
	stdout testkit.Buffer
	stderr testkit.Buffer
	done   chan struct{}
	err    error // from Wait, valid after done is closed
}

// startMosq starts a mosquitto client against the broker at addr. The
// process is killed when the test ends or after 20 s.
func startMosq(t *testing.T, addr, name string, args ...string) *mosqProc {
	t.Helper()
	bin := mosqBin(t, name)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	p := &mosqProc{done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// wait waits for the process to exit and returns its standard output.
func (p *mosqProc) wait(t *testing.T) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("%v still running after 15s; stdout %q stderr %q", p.cmd.Args, p.stdout.String(), p.stderr.String())
	}
	return p.stdout.String()
}

// mustSucceed waits for the process and fails the test unless it exited 0.
func (p *mosqProc) mustSucceed(t *testing.T) string {
	t.Helper()
	out := p.wait(t)
	if p.err != nil {
		t.Fatalf("%v: %v; stdout %q stderr %q", p.cmd.Args, p.err, out, p.stderr.String())
	}
	return out
}

// runMosq runs a mosquitto client to completion and requires success.
func runMosq(t *testing.T, addr, name string, args ...string) string {
	t.Helper()
	return startMosq(t, addr, name, args...).mustSucceed(t)
}

// waitSubscribed waits until clientID is connected with n subscriptions,
// so that a publish that follows is routed to it.
func waitSubscribed(t *testing.T, s *Server, clientID string, n int) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, func() error {
		sess := s.sessions.Get(clientID)
		if sess == nil || !sess.Online() {
			return fmt.Errorf("%s not connected", clientID)
		}
		if got := sess.Stats().Subscriptions; got != n {
			return fmt.Errorf("%s has %d subscriptions, want %d", clientID, got, n)
		}
		return nil
	})
}

// lines splits output into non-empty lines.
func lines(out string) []string {
	var ls []string
	for l := range strings.SplitSeq(out, "\n") {
		if l != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

// TestInterop_PubSubQoS sends QoS 0, 1 and 2 from mosquitto_pub to a
// mosquitto_sub subscribed at QoS 2, for every pair of protocol versions,
// and checks topic, QoS, retain flag and payload as the subscriber
// printed them.
func TestInterop_PubSubQoS(t *testing.T) {
	mosqBin(t, "mosquitto_sub")
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	for i, sv := range mosqVersions {
		pv := mosqVersions[(i+1)%len(mosqVersions)] // publisher speaks another version
		t.Run(sv.name+"_from_"+pv.name, func(t *testing.T) {
			t.Parallel()
			topic := "interop/qos/" + sv.flag
			subID := "sub-qos-" + sv.flag
			sub := startMosq(t, addr, "mosquitto_sub", "-V", sv.flag, "-i", subID,
				"-t", topic, "-q", "2", "-C", "3", "-F", "%t|%q|%r|%p")
			waitSubscribed(t, s, subID, 1)
			for q := 0; q <= 2; q++ {
				runMosq(t, addr, "mosquitto_pub", "-V", pv.flag, "-i", fmt.Sprintf("pub-qos-%s-%d", sv.flag, q),
					"-t", topic, "-q", fmt.Sprint(q), "-m", fmt.Sprintf("payload at qos %d", q))
			}
			got := lines(sub.mustSucceed(t))
			want := []string{
				topic + "|0|0|payload at qos 0",
				topic + "|1|0|payload at qos 1",
				topic + "|2|0|payload at qos 2",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("subscriber printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestInterop_Retained publishes a retained message with mosquitto_pub -r,
// checks that a later mosquitto_sub receives it flagged as retained, then
// clears it with -r -n and checks that a new subscriber receives nothing.
func TestInterop_Retained(t *testing.T) {
	mosqBin(t, "mosquitto_sub")
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	for _, v := range mosqVersions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			topic := "interop/retained/" + v.flag
			runMosq(t, addr, "mosquitto_pub", "-V", v.flag, "-i", "rpub-"+v.flag, "-t", topic, "-q", "1", "-r", "-m", "kept")
			out := runMosq(t, addr, "mosquitto_sub", "-V", v.flag, "-i", "rsub-"+v.flag,
				"-t", "interop/retained/"+v.flag+"/#", "-q", "1", "-C", "1", "-W", "5", "-F", "%t|%q|%r|%p")
			if want := topic + "|1|1|kept"; strings.TrimSpace(out) != want {
				t.Fatalf("subscriber printed %q, want %q", out, want)
			}

			// An empty retained message clears it [MQTT-3.3.1-10].
			runMosq(t, addr, "mosquitto_pub", "-V", v.flag, "-i", "rclr-"+v.flag, "-t", topic, "-r", "-n")
			testkit.WaitFor(t, 5*time.Second, func() error {
				if n := len(s.retained.match(topic, time.Now().UnixNano(), nil)); n != 0 {
					return fmt.Errorf("%d retained messages left on %s", n, topic)
				}
				return nil
			})
			sub := startMosq(t, addr, "mosquitto_sub", "-V", v.flag, "-i", "rsub2-"+v.flag,
				"-t", topic, "-C", "1", "-W", "1", "-F", "%t|%r|%p")
			out = sub.wait(t)
			if out != "" || sub.err == nil {
				t.Fatalf("after clearing, subscriber printed %q (exit %v), want nothing and a timeout", out, sub.err)
			}
		})
	}
}

// TestInterop_Will connects a mosquitto_sub with a will, kills it (no
// DISCONNECT reaches the broker) and checks that another subscriber
// receives the will.
func TestInterop_Will(t *testing.T) {
	mosqBin(t, "mosquitto_sub")
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	for _, v := range mosqVersions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			willTopic := "interop/will/" + v.flag
			watcherID, dyingID := "will-watch-"+v.flag, "will-dying-"+v.flag
			watcher := startMosq(t, addr, "mosquitto_sub", "-V", v.flag, "-i", watcherID,
				"-t", willTopic, "-q", "1", "-C", "1", "-F", "%t|%q|%p")
			waitSubscribed(t, s, watcherID, 1)
			dying := startMosq(t, addr, "mosquitto_sub", "-V", v.flag, "-i", dyingID, "-t", "interop/unused",
				"--will-topic", willTopic, "--will-payload", "went away", "--will-qos", "1")
			waitSubscribed(t, s, dyingID, 1)
			if err := dying.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			out := watcher.mustSucceed(t)
			if want := willTopic + "|1|went away"; strings.TrimSpace(out) != want {
				t.Fatalf("watcher printed %q, want %q", out, want)
			}
		})
	}
}

// TestInterop_WillNotSentOnDisconnect checks that a client that ends with
// DISCONNECT (mosquitto_sub -C 1 exiting normally) has its will discarded
// [MQTT-3.1.2-10].
func TestInterop_WillNotSentOnDisconnect(t *testing.T) {
	mosqBin(t, "mosquitto_sub")
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	watcher := startMosq(t, addr, "mosquitto_sub", "-V", "311", "-i", "watch", "-t", "interop/will/#", "-v")
	waitSubscribed(t, s, "watch", 1)
	polite := startMosq(t, addr, "mosquitto_sub", "-V", "311", "-i", "polite", "-t", "interop/trigger", "-C", "1",
		"--will-topic", "interop/will/polite", "--will-payload", "should not appear")
	waitSubscribed(t, s, "polite", 1)
	runMosq(t, addr, "mosquitto_pub", "-V", "311", "-i", "trigger", "-t", "interop/trigger", "-m", "bye")
	polite.mustSucceed(t)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if s.sessions.Get("polite") != nil {
			return fmt.Errorf("session of polite still there")
		}
		return nil
	})
	// Publish a marker after the will would have gone: the watcher must
	// print the marker and nothing before it.
	runMosq(t, addr, "mosquitto_pub", "-V", "311", "-i", "marker", "-t", "interop/will/marker", "-m", "marker")
	testkit.WaitFor(t, 5*time.Second, func() error {
		if !strings.Contains(watcher.stdout.String(), "marker") {
			return fmt.Errorf("watcher has %q", watcher.stdout.String())
		}
		return nil
	})
	if out := watcher.stdout.String(); out != "interop/will/marker marker\n" {
		t.Fatalf("watcher printed %q, want only the marker", out)
	}
}

// TestInterop_Count checks that mosquitto_sub -C N receives exactly the
// first N of more messages, in order, and exits on its own.
func TestInterop_Count(t *testing.T) {
	mosqBin(t, "mosquitto_sub")
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	for _, v := range mosqVersions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			topic := "interop/count/" + v.flag
			subID := "count-sub-" + v.flag
			sub := startMosq(t, addr, "mosquitto_sub", "-V", v.flag, "-i", subID, "-t", topic, "-q", "1", "-C", "5")
			waitSubscribed(t, s, subID, 1)
			// mosquitto_pub -l sends one message per line of its input.
			pub := exec.Command(mosqBin(t, "mosquitto_pub"), "-h", "127.0.0.1", "-p", portOf(t, addr),
				"-V", v.flag, "-i", "count-pub-"+v.flag, "-t", topic, "-q", "1", "-l")
			var in strings.Builder
			for i := 1; i <= 8; i++ {
				fmt.Fprintf(&in, "message %d\n", i)
			}
			pub.Stdin = strings.NewReader(in.String())
			if out, err := pub.CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_pub -l: %v: %s", err, out)
			}
			got := lines(sub.mustSucceed(t))
			want := []string{"message 1", "message 2", "message 3", "message 4", "message 5"}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("subscriber printed %q, want %q", got, want)
			}
		})
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestInterop_PersistentSession subscribes with mosquitto_sub -c (clean
// session 0), lets it exit, publishes QoS 1 messages while it is away and
// checks that a new mosquitto_sub -c with the same client ID receives them.
func TestInterop_PersistentSession(t *testing.T) {
	mosqBin(t, "mosquitto_sub")
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	for _, v := range mosqVersions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			topic := "interop/offline/" + v.flag
			id := "offline-" + v.flag
			// -E exits once the subscription is acknowledged.
			runMosq(t, addr, "mosquitto_sub", "-V", v.flag, "-i", id, "-c", "-q", "1", "-t", topic, "-E")
			testkit.WaitFor(t, 5*time.Second, func() error {
				sess := s.sessions.Get(id)
				if sess == nil || sess.Online() {
					return fmt.Errorf("session of %s missing or still online", id)
				}
				return nil
			})
			for i := 1; i <= 3; i++ {
				runMosq(t, addr, "mosquitto_pub", "-V", v.flag, "-i", "offline-pub-"+v.flag, "-t", topic, "-q", "1",
					"-m", fmt.Sprintf("queued %d", i))
			}
			out := runMosq(t, addr, "mosquitto_sub", "-V", v.flag, "-i", id, "-c", "-q", "1", "-t", topic,
				"-C", "3", "-W", "5")
			if got := strings.Join(lines(out), ","); got != "queued 1,queued 2,queued 3" {
				t.Fatalf("resumed subscriber printed %q", got)
			}
		})
	}
}

// TestInterop_UserProperties sends MQTT v5 user properties with
// mosquitto_pub -D and checks them, in order, with mosquitto_sub -F %P;
// a 3.1.1 subscriber gets the same message without them.
func TestInterop_UserProperties(t *testing.T) {
	mosqBin(t, "mosquitto_sub")
	t.Parallel()
	s, addr := newTestBroker(t, testOptions())
	topic := "interop/props"
	v5 := startMosq(t, addr, "mosquitto_sub", "-V", "5", "-i", "props-v5", "-t", topic, "-q", "1", "-C", "1",
		"-F", "%t|%p|%P")
	v3 := startMosq(t, addr, "mosquitto_sub", "-V", "311", "-i", "props-v3", "-t", topic, "-q", "1", "-C", "1", "-v")
	waitSubscribed(t, s, "props-v5", 1)
	waitSubscribed(t, s, "props-v3", 1)
	runMosq(t, addr, "mosquitto_pub", "-V", "5", "-i", "props-pub", "-t", topic, "-q", "1", "-m", "with props",
		"-D", "publish", "user-property", "site", "north",
		"-D", "publish", "user-property", "unit", "7",
		"-D", "publish", "user-property", "site", "south") // keys may repeat, order is kept
	if got, want := strings.TrimSpace(v5.mustSucceed(t)), topic+"|with props|site:north unit:7 site:south"; got != want {
		t.Fatalf("v5 subscriber printed %q, want %q", got, want)
	}
	if got, want := strings.TrimSpace(v3.mustSucceed(t)), topic+" with props"; got != want {
		t.Fatalf("3.1.1 subscriber printed %q, want %q", got, want)
	}
}
