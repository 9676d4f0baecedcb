package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// v5Session connects a v5 client with a session that outlives it and
// returns the connection and the CONNACK.
func v5Session(t *testing.T, addr, id string, clean bool) (net.Conn, *bufio.Reader, *packet.Connack) {
	t.Helper()
	props := packet.Properties{SessionExpiry: 3600}
	props.Present.Add(packet.PropSessionExpiry)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.Write(packet.Append(nil, &packet.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30, Properties: props}, packet.V5))
	br := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	pk, err := packet.Read(br, packet.V5, 0)
	if err != nil {
		t.Fatal(err)
	}
	ack, ok := pk.(*packet.Connack)
	if !ok || ack.Reason != packet.Success {
		t.Fatalf("connect %s: %+v", id, pk)
	}
	return nc, br, ack
}

// TestMain_ExportImport backs up a running broker's store and message
// archive with `gatemq export`, restores them with `gatemq import` into
// an empty data directory, and starts a broker there: the durable
// session is back with the messages queued for it, the retained message
// and the archive too, and an export of the restored directory is the
// same text as the backup.
func TestMain_ExportImport(t *testing.T) {
	bin := buildBinary(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	cmd, addr := archiveBroker(t, dirA, "[[archive]]\ntopic = \"bk/#\"\n")

	nc, br, _ := v5Session(t, addr, "bk-sub", true)
	nc.Write(packet.Append(nil, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "bk/#", QoS: 1}}}, packet.V5))
	if _, err := packet.Read(br, packet.V5, 0); err != nil { // SUBACK: committed
		t.Fatal(err)
	}
	nc.Write(packet.Append(nil, &packet.Disconnect{}, packet.V5))
	nc.Close()

	pub, pbr := dialConnect(t, addr, packet.V5, "bk-pub")
	const n = 20
	for i := 1; i <= n; i++ {
		pub.Write(packet.Append(nil, &packet.Publish{Topic: "bk/data", QoS: 1, PacketID: uint16(i), Payload: []byte(fmt.Sprint("m", i))}, packet.V5))
	}
	pub.Write(packet.Append(nil, &packet.Publish{Topic: "bk/ret", QoS: 1, PacketID: n + 1, Retain: true, Payload: []byte("kept")}, packet.V5))
	for i := 0; i <= n; i++ { // every PUBACK: stored and synced
		if pk, err := packet.Read(pbr, packet.V5, 0); err != nil || pk.Type() != packet.PUBACK {
			t.Fatalf("PUBACK %d: %v %v", i, pk, err)
		}
	}
	testkit.WaitFor(t, 5*time.Second, func() error { // the archive commits after the PUBACKs
		if got := len(listAllPages(t, dirA, "--topic", "bk/data")); got != n {
			return fmt.Errorf("%d messages archived, want %d", got, n)
		}
		return nil
	})

	// Export from the running broker, through its admin socket.
	backup := filepath.Join(t.TempDir(), "backup.jsonl")
	if out, err := exec.Command(bin, "export", "-data-dir", dirA, "-o", backup).CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	// Never into a directory that has a store.
	out, err := exec.Command(bin, "import", "-data-dir", dirA, backup).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already holds a store") {
		t.Fatalf("import into the original directory: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "import", "-data-dir", dirB, backup).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "imported 3 files") { // meta.db, a generation, an archive segment
		t.Fatalf("import: %v\n%s", err, out)
	}
	if got := payloadsOf(listAllPages(t, dirB, "--topic", "bk/data", "--oldest")); !slices.Equal(got, seq("m", 1, n+1)) {
		t.Fatalf("archive after import: %q", got)
	}
	again, err := exec.Command(bin, "export", "-data-dir", dirB).Output()
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	skipFirst := func(b []byte) []byte { return b[bytes.IndexByte(b, '\n')+1:] }
	if !bytes.Equal(skipFirst(orig), skipFirst(again)) {
		t.Fatalf("export of the imported directory differs from the backup (%d and %d bytes)", len(orig), len(again))
	}

	addrB := testkit.FreeAddr(t)
	runBroker(t, exec.Command(bin, "-listen", addrB, "-data-dir", dirB), addrB)
	nc, br, ack := v5Session(t, addrB, "bk-sub", false)
	if !ack.SessionPresent {
		t.Fatal("session not present after import")
	}
	for i := 1; i <= n; i++ {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		pk, err := packet.Read(br, packet.V5, 0)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		p, ok := pk.(*packet.Publish)
		if !ok {
			t.Fatalf("message %d: %v", i, pk)
		}
		if p.Topic == "bk/ret" {
			i--
			continue // the retained message, also queued for the session
		}
		if string(p.Payload) != fmt.Sprint("m", i) {
			t.Fatalf("message %d: %q", i, p.Payload)
		}
		nc.Write(packet.Append(nil, &packet.Puback{PacketID: p.PacketID}, packet.V5))
	}
	sub, sbr := dialConnect(t, addrB, packet.V5, "bk-new")
	sub.Write(packet.Append(nil, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "bk/ret", QoS: 0}}}, packet.V5))
	for {
		sub.SetReadDeadline(time.Now().Add(5 * time.Second))
		pk, err := packet.Read(sbr, packet.V5, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := pk.(*packet.Publish); ok {
			if !p.Retain || string(p.Payload) != "kept" {
				t.Fatalf("retained after import: %+v", p)
			}
			break
		}
	}
}
