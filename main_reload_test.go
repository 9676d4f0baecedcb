package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// v5Conn is a raw v5 connection with its CONNACK.
type v5Conn struct {
	t   *testing.T
	nc  net.Conn
	br  *bufio.Reader
	ack *packet.Connack
}

func dialV5(t *testing.T, addr, id string) *v5Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &v5Conn{t: t, nc: nc, br: bufio.NewReader(nc)}
	nc.Write(packet.Append(nil, &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}, packet.V5))
	ack, ok := c.read().(*packet.Connack)
	if !ok || ack.Reason != packet.Success {
		t.Fatalf("connect %s: %+v", id, ack)
	}
	c.ack = ack
	return c
}

func (c *v5Conn) read() packet.Packet {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	pk, err := packet.Read(c.br, packet.V5, 0)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return pk
}

// publish sends a QoS 1 PUBLISH of n bytes and returns what answers it.
func (c *v5Conn) publish(n int) packet.Packet {
	c.t.Helper()
	c.nc.Write(packet.Append(nil, &packet.Publish{Topic: "big", QoS: 1, PacketID: 1, Payload: bytes.Repeat([]byte{'x'}, n)}, packet.V5))
	return c.read()
}

// limits returns the CONNACK's Maximum Packet Size and Receive Maximum.
func (c *v5Conn) limits() (int, int) {
	return int(c.ack.Properties.MaximumPacketSize), int(c.ack.Properties.ReceiveMaximum)
}

// waitReloads waits until the broker has finished n reloads.
func waitReloads(t *testing.T, logs *testkit.Buffer, n int) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, func() error {
		if got := strings.Count(logs.String(), "reload done"); got < n {
			return fmt.Errorf("%d reloads done, want %d", got, n)
		}
		return nil
	})
}

// TestMain_ReloadLimits changes limits with SIGHUP through the real
// binary: new connections get them in their CONNACK and are held to
// them, connections made before keep theirs, a bad file changes nothing,
// and settings that need a restart say so and keep their value.
func TestMain_ReloadLimits(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatemq.toml")
	second := testkit.FreeAddr(t)
	writeCfg := func(mqtt, secondAddr string) {
		t.Helper()
		body := fmt.Sprintf("[mqtt]\nsys_interval = \"0\"\n%s\n[[listener]]\naddress = \"127.0.0.1:1883\" # -listen\n[[listener]]\naddress = %q\n",
			mqtt, secondAddr)
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("max_packet_size = \"64KiB\"\nmax_inflight = 20", second)
	cmd, addr, logs := startBroker(t, "-config", cfgPath)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", logs)
		}
	})
	before := dialV5(t, addr, "before")
	if size, recv := before.limits(); size != 64<<10 || recv != 20 {
		t.Fatalf("CONNACK Maximum Packet Size %d, Receive Maximum %d; want 65536, 20", size, recv)
	}

	writeCfg("max_packet_size = \"2KiB\"\nmax_inflight = 10", second)
	cmd.Process.Signal(syscall.SIGHUP)
	waitReloads(t, logs, 1)
	after := dialV5(t, addr, "after")
	if size, recv := after.limits(); size != 2048 || recv != 10 {
		t.Fatalf("after reload: CONNACK Maximum Packet Size %d, Receive Maximum %d; want 2048, 10", size, recv)
	}
	if pk, ok := after.publish(4000).(*packet.Disconnect); !ok || pk.Reason != packet.PacketTooLarge {
		t.Fatalf("a PUBLISH over the new limit got %+v, want DISCONNECT 0x95", pk)
	}
	if pk, ok := before.publish(4000).(*packet.Puback); !ok {
		t.Fatalf("a connection made before the reload got %+v for a PUBLISH within its limit, want PUBACK", pk)
	}

	// A bad file keeps every setting in use, and says where it is bad.
	writeCfg("max_packet_size = \"lots\"\nmax_inflight = 5", second)
	cmd.Process.Signal(syscall.SIGHUP)
	waitReloads(t, logs, 2)
	waitLog(t, logs, "config file not applied")
	waitLog(t, logs, cfgPath+":3: mqtt.max_packet_size")
	if size, recv := dialV5(t, addr, "bad").limits(); size != 2048 || recv != 10 {
		t.Fatalf("after a bad file: CONNACK Maximum Packet Size %d, Receive Maximum %d; want 2048, 10", size, recv)
	}

	// A listener's address needs a restart: logged, and the listener
	// stays where it was. A Receive Maximum above the one at start
	// applies.
	writeCfg("max_packet_size = \"2KiB\"\nmax_inflight = 40", testkit.FreeAddr(t))
	cmd.Process.Signal(syscall.SIGHUP)
	waitReloads(t, logs, 3)
	waitLog(t, logs, "needs a restart\" key=listener[1].address")
	if n := strings.Count(logs.String(), "needs a restart\" key=listener[1].address"); n != 1 {
		t.Errorf("%d restart lines for listener[1].address, want 1", n)
	}
	waitListening(t, second)
	if _, recv := dialV5(t, addr, "raised").limits(); recv != 40 {
		t.Fatalf("Receive Maximum %d after asking for 40 (20 at start)", recv)
	}
}

// TestMain_SystemdReload: a SIGHUP is framed by RELOADING=1 with the
// monotonic time of the request and READY=1, as systemd 253 and later
// want.
func TestMain_SystemdReload(t *testing.T) {
	bin := buildBinary(t)
	sock, msgs := notifySocket(t)
	addr := testkit.FreeAddr(t)
	cmd := exec.Command(bin, "-listen", addr, "-data-dir", t.TempDir())
	cmd.Env = append(cmd.Environ(), "NOTIFY_SOCKET="+sock)
	runBroker(t, cmd, addr)
	expectNotify(t, msgs, "READY=1", 10*time.Second)

	start := monotonicUsec(t)
	cmd.Process.Signal(syscall.SIGHUP)
	var reloading string
	select {
	case reloading = <-msgs:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification after SIGHUP")
	}
	lines := strings.Split(strings.TrimSpace(reloading), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("got %q, want RELOADING=1 and MONOTONIC_USEC=", reloading)
	}
	at, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || at < start || at > monotonicUsec(t) {
		t.Fatalf("MONOTONIC_USEC %d (%v) not between %d and now", at, err, start)
	}
	expectNotify(t, msgs, "READY=1", 10*time.Second)
}

// monotonicUsec reads CLOCK_MONOTONIC in microseconds, as sd_notify's
// MONOTONIC_USEC counts.
func monotonicUsec(t *testing.T) uint64 {
	t.Helper()
	s := strings.TrimSpace(strings.TrimPrefix(daemon.SdNotifyMonotonicUsec(), "MONOTONIC_USEC="))
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("monotonic clock: %q: %v", s, err)
	}
	return n
}
