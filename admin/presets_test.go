package admin

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatemq/boltstore"
	"gatemq/broker"
	"gatemq/internal/testkit"
)

// startWithStore starts a broker with a durable store and the admin API
// on a Unix socket, with the preset and retained endpoints.
func startWithStore(t *testing.T) (*broker.Server, string, *http.Client) {
	t.Helper()
	srv, _, addr := startStoreBroker(t)
	_, c, _ := startUnix(t, Options{Broker: srv, Presets: srv, Retained: srv})
	return srv, addr, c
}

// startStoreBroker starts a broker with a durable store, serving MQTT on
// a loopback port, and returns it, its store and the port's address.
func startStoreBroker(t *testing.T) (*broker.Server, *boltstore.Store, string) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "ds"), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := broker.DefaultOptions()
	o.Store = st
	srv := broker.New(o)
	if err := srv.Restore(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close(context.Background())
		st.Close()
	})
	return srv, st, ln.Addr().String()
}

func send(t *testing.T, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func TestServer_Presets(t *testing.T) {
	srv, addr, c := startWithStore(t)
	const base = "http://admin/api/v1/presets"
	tests := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"empty list", "GET", base, "", 200, "[]"},
		{"set", "PUT", base + "/dev%2F1", `{"filter":"cmd/#","qos":1,"retain_handling":2}`, 200, `"applied": false`},
		{"set another", "PUT", base + "/dev%2F1", `{"filter":"x","no_local":true}`, 200, `"filter": "x"`},
		{"listed", "GET", base + "/dev%2F1", "", 200, `"filter": "cmd/#",
    "qos": 1,
    "no_local": false,
    "retain_as_published": false,
    "retain_handling": 2,
    "source": "stored"`},
		{"unknown field", "PUT", base + "/dev", `{"filter":"a","qoss":1}`, 400, "unknown field"},
		{"not JSON", "PUT", base + "/dev", `filter=a`, 400, "invalid character"},
		{"bad filter", "PUT", base + "/dev", `{"filter":"a/#/b"}`, 400, "invalid preset subscription"},
		{"bad QoS", "PUT", base + "/dev", `{"filter":"a","qos":3}`, 400, "invalid preset subscription"},
		{"QoS overflow", "PUT", base + "/dev", `{"filter":"a","qos":300}`, 400, "cannot unmarshal"},
		{"no local shared", "PUT", base + "/dev", `{"filter":"$share/g/a","no_local":true}`, 400, "no local"},
		{"delete absent filter", "DELETE", base + "/dev%2F1?filter=nope", "", 404, "no stored preset subscription for dev/1 to nope"},
		{"delete one", "DELETE", base + "/dev%2F1?filter=x", "", 200, `"removed": 1`},
		{"delete all", "DELETE", base + "/dev%2F1", "", 200, `"removed": 1`},
		{"delete none", "DELETE", base + "/dev%2F1", "", 404, "no stored preset"},
		{"dot client ID", "PUT", base + "/%2E%2E", `{"filter":"dots"}`, 200, `"client_id": ".."`},
		{"list all", "GET", base, "", 200, `"client_id": ".."`},
	}
	for _, tc := range tests {
		code, body := send(t, c, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %s %s: %d %s\nwant %d with %q", tc.name, tc.method, tc.path, code, body, tc.code, tc.want)
		}
	}
	if got := srv.Presets(".."); len(got) != 1 || got[0].Filter != "dots" {
		t.Errorf("broker presets of \"..\": %+v", got)
	}

	// Applied at once to a connected client.
	nc := mqttConnect(t, addr, "online", true)
	testkit.WaitFor(t, 5*time.Second, func() error {
		code, body := send(t, c, "PUT", base+"/online", `{"filter":"live/#","qos":1}`)
		if code != 200 || !strings.Contains(body, `"applied": true`) {
			return fmt.Errorf("set for a connected client: %d %s", code, body)
		}
		return nil
	})
	nc.Close()

	// Without a store there is nowhere to keep presets.
	plain := broker.New(broker.DefaultOptions())
	t.Cleanup(func() { plain.Close(context.Background()) })
	_, c2, _ := startUnix(t, Options{Broker: plain, Presets: plain})
	if code, body := send(t, c2, "PUT", base+"/dev", `{"filter":"a"}`); code != 409 || !strings.Contains(body, "no durable store") {
		t.Errorf("set without a store: %d %s", code, body)
	}
	// Without a PresetManager the endpoints are not there.
	_, c3, _ := startUnix(t, Options{Broker: plain})
	if code, body := send(t, c3, "GET", base, ""); code != 404 || !strings.Contains(body, "not available") {
		t.Errorf("presets without a manager: %d %s", code, body)
	}
}

func TestServer_RetainedGetDelete(t *testing.T) {
	_, addr, c := startWithStore(t)
	pub := mqttConnect(t, addr, "pub", false)
	for _, m := range [][2]string{{"a/b", "text"}, {"a/c", "\x00\x01"}, {"..", "dots"}} {
		body := append([]byte{0, byte(len(m[0]))}, m[0]...)
		body = append(body, m[1]...)
		pub.Write(append([]byte{0x31, byte(len(body))}, body...)) // PUBLISH QoS 0, retain
	}
	const base = "http://admin/api/v1/retained"
	testkit.WaitFor(t, 5*time.Second, func() error {
		if _, body := send(t, c, "GET", base, ""); !strings.Contains(body, `"topic": ".."`) {
			return fmt.Errorf("not retained yet: %s", body)
		}
		return nil
	})
	tests := []struct {
		name, method, path string
		code               int
		want, not          string
	}{
		{"filter", "GET", base + "?topic=a/%2B", 200, `"topic": "a/c"`, ".."},
		{"bad filter", "GET", base + "?topic=a/%23/b", 400, "invalid topic", ""},
		{"text", "GET", base + "/a%2Fb", 200, `"payload_text": "text"`, ""},
		{"slash unescaped", "GET", base + "/a/b", 200, `"payload_text": "text"`, ""},
		{"binary", "GET", base + "/a%2Fc", 200, `"payload_base64": "AAE="`, "payload_text"},
		{"stored time", "GET", base + "/a%2Fc", 200, `"stored": "`, ""},
		{"dots", "GET", base + "/%2E%2E", 200, `"payload_text": "dots"`, ""},
		{"absent", "GET", base + "/a%2Fz", 404, "no retained message on a/z", ""},
		{"delete", "DELETE", base + "/a%2Fb", 200, `"deleted": "a/b"`, ""},
		{"deleted", "GET", base + "/a%2Fb", 404, "no retained message", ""},
		{"delete again", "DELETE", base + "/a%2Fb", 404, "no retained message", ""},
		{"delete a filter", "DELETE", base + "/a%2F%2B", 400, "invalid topic", ""},
		{"listed no more", "GET", base, 200, `"topic": "a/c"`, `"a/b"`},
	}
	for _, tc := range tests {
		code, body := send(t, c, tc.method, tc.path, "")
		if code != tc.code || !strings.Contains(body, tc.want) || (tc.not != "" && strings.Contains(body, tc.not)) {
			t.Errorf("%s: %s %s: %d %s\nwant %d with %q without %q", tc.name, tc.method, tc.path, code, body, tc.code, tc.want, tc.not)
		}
	}
	_, c3, _ := startUnix(t, Options{Broker: &fakeBroker{}})
	if code, _ := send(t, c3, "GET", base+"/a", ""); code != 404 {
		t.Errorf("get without a RetainedEditor: %d", code)
	}
	if code, _ := send(t, c3, "GET", base, ""); code != 200 {
		t.Errorf("list without a RetainedEditor: %d", code)
	}
}
