package admin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatemq/broker"
	"gatemq/internal/testkit"
)

// mqttConnect dials addr and sends CONNECT (3.1.1, or 5 with v5),
// returning the connection after CONNACK.
func mqttConnect(t *testing.T, addr, id string, v5 bool) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	level, props := byte(4), []byte(nil)
	if v5 {
		level, props = 5, []byte{0}
	}
	body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', level, 0x02, 0, 60}, props...)
	body = append(body, byte(len(id)>>8), byte(len(id)))
	body = append(body, id...)
	nc.Write(append([]byte{0x10, byte(len(body))}, body...))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(nc, hdr); err != nil || hdr[0] != 0x20 {
		t.Fatalf("CONNACK: %x %v", hdr, err)
	}
	io.ReadFull(nc, make([]byte, hdr[1]))
	return nc
}

func mqttPublish(nc net.Conn, topic, payload string) {
	body := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
	body = append(body, payload...)
	nc.Write(append([]byte{0x30, byte(len(body))}, body...))
}

func TestServer_RealBroker(t *testing.T) {
	srv := broker.New(broker.DefaultOptions())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(context.Background()) })
	a := New(Options{Broker: srv})
	path := filepath.Join(t.TempDir(), "admin.sock")
	if _, err := a.ListenUnix(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	c := unixClient(path)

	testkit.WaitFor(t, 5*time.Second, func() error {
		if code, body := do(t, c, "GET", "http://admin/readyz", nil); code != 200 {
			return fmt.Errorf("readyz %d %s", code, body)
		}
		return nil
	})
	pub := mqttConnect(t, ln.Addr().String(), "pub-1", false)
	victim := mqttConnect(t, ln.Addr().String(), "victim", true)
	for i := range 5 {
		mqttPublish(pub, "t/1", fmt.Sprint("m", i))
	}
	testkit.WaitFor(t, 5*time.Second, func() error {
		_, body := do(t, c, "GET", "http://admin/metrics", nil)
		if !strings.Contains(body, `gatemq_messages_received_total{qos="0"} 5`+"\n") || !strings.Contains(body, "gatemq_connections 2\n") {
			return fmt.Errorf("counters not there yet:\n%s", body)
		}
		return nil
	})
	if code, body := do(t, c, "GET", "http://admin/api/v1/clients", nil); code != 200 ||
		!strings.Contains(body, `"client_id": "victim"`) || !strings.Contains(body, `"protocol_version": "5.0"`) {
		t.Fatalf("clients: %d %s", code, body)
	}

	if code, body := do(t, c, "DELETE", "http://admin/api/v1/clients/victim", nil); code != 200 {
		t.Fatalf("kick: %d %s", code, body)
	}
	// v5: DISCONNECT 0x98 (administrative action), then EOF.
	r := bufio.NewReader(victim)
	victim.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(r)
	if len(got) < 3 || got[0] != 0xE0 || got[2] != 0x98 {
		t.Fatalf("kicked client read %x, want DISCONNECT 0x98", got)
	}
	testkit.WaitFor(t, 5*time.Second, func() error {
		if _, body := do(t, c, "GET", "http://admin/api/v1/clients?state=online", nil); strings.Contains(body, "victim") {
			return fmt.Errorf("still listed online: %s", body)
		}
		return nil
	})
	// Its status record stays, offline, with why.
	if code, body := do(t, c, "GET", "http://admin/api/v1/clients/victim", nil); code != 200 ||
		!strings.Contains(body, `"state": "offline"`) || !strings.Contains(body, `"disconnect_reason": "kicked"`) {
		t.Fatalf("victim's status: %d %s", code, body)
	}
}
