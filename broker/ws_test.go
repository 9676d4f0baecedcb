package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/paho"

	"gatemq/broker/packet"
)

// dialWS opens a WebSocket to the broker at url offering subprotocol;
// cfg, if set, is the client's TLS configuration.
func dialWS(t testing.TB, url, subprotocol string, cfg *tls.Config) (*websocket.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{}
	if subprotocol != "" {
		opts.Subprotocols = []string{subprotocol}
	}
	if cfg != nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	ws, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws, nil
}

// dialRawWS is dialRaw over a WebSocket.
func dialRawWS(t testing.TB, url string, cfg *tls.Config, v packet.Version) *rawClient {
	t.Helper()
	sub := "mqtt"
	if v == packet.V31 {
		sub = "mqttv3.1"
	}
	ws, err := dialWS(t, url, sub, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if ws.Subprotocol() != sub {
		t.Fatalf("subprotocol %q, want %q", ws.Subprotocol(), sub)
	}
	return rawOver(t, websocket.NetConn(context.Background(), ws, websocket.MessageBinary), v)
}

func TestWS_RoundTrip(t *testing.T) {
	ca := newTestCA(t, "ca")
	cfg, _ := tlsSetup{ca: ca, server: ca.issue(t, "server", true, nil)}.load(t)
	for _, tc := range []struct {
		name   string
		scheme string
		server *tls.Config
		client *tls.Config
	}{
		{"ws", "ws", nil, nil},
		{"wss", "wss", cfg.Config(), clientTLS(ca, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := newTestListener(t, testOptions(), ListenerOptions{WebSocket: true, TLS: tc.server})
			url := tc.scheme + "://" + addr + WSPath
			for _, v := range allVersions {
				t.Run(v.String(), func(t *testing.T) {
					sub := dialRawWS(t, url, tc.client, v)
					sub.mustConnect("ws-sub-"+v.String(), true)
					pub := dialRawWS(t, url, tc.client, v)
					pub.mustConnect("ws-pub-"+v.String(), true)
					roundTrip(t, sub, pub, "ws/"+v.String())
					// A large message crosses many reads.
					big := strings.Repeat("x", 200<<10)
					pub.publishAck(&packet.Publish{Topic: "ws/" + v.String(), QoS: 1, PacketID: 8, Payload: []byte(big)})
					if p := sub.recvPublishAck(); string(p.Payload) != big {
						t.Fatalf("large payload: got %d bytes", len(p.Payload))
					}
				})
			}
		})
	}
}

func TestWS_PacketsSplitAcrossFrames(t *testing.T) {
	_, addr := newTestListener(t, testOptions(), ListenerOptions{WebSocket: true})
	ws, err := dialWS(t, "ws://"+addr+WSPath, "mqtt", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	write := func(b []byte) {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
			t.Fatal(err)
		}
	}
	v := packet.V311
	connect := packet.Append(nil, &packet.Connect{ProtocolName: "MQTT", Version: v, ClientID: "frames", CleanStart: true, KeepAlive: 30}, v)
	// CONNECT one byte per frame, then in two uneven halves below.
	for i := range connect {
		write(connect[i : i+1])
	}
	nc := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), v: v}
	if ack := c.recv().(*packet.Connack); ack.Reason != packet.Success {
		t.Fatalf("connack %v", ack.Reason)
	}
	// SUBSCRIBE, PUBLISH and PINGREQ in one frame, split mid-packet
	// into a second.
	var b []byte
	b = packet.Append(b, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "f/#", QoS: 1}}}, v)
	b = packet.Append(b, &packet.Publish{Topic: "f/1", QoS: 1, PacketID: 2, Payload: []byte("split")}, v)
	b = packet.Append(b, &packet.Pingreq{}, v)
	cut := len(b) - 5
	write(b[:cut])
	write(b[cut:])
	var got []packet.Type
	for len(got) < 4 {
		pk := c.recv()
		got = append(got, pk.Type())
		if p, ok := pk.(*packet.Publish); ok {
			if string(p.Payload) != "split" {
				t.Fatalf("payload %q", p.Payload)
			}
			c.send(&packet.Puback{PacketID: p.PacketID})
		}
	}
	// SUBACK, then PUBACK, PUBLISH and PINGRESP in some order.
	if got[0] != packet.SUBACK {
		t.Fatalf("got %v", got)
	}
}

func TestWS_HTTPRefusals(t *testing.T) {
	o := testOptions()
	o.ConnectTimeout = 500 * time.Millisecond
	_, addr := newTestListener(t, o, ListenerOptions{WebSocket: true})
	get := func(path string, hdr map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	if got := get(WSPath, nil); got != http.StatusUpgradeRequired {
		t.Errorf("plain GET %s: %d, want 426", WSPath, got)
	}
	if got := get("/", nil); got != http.StatusNotFound {
		t.Errorf("GET /: %d, want 404", got)
	}
	if got := get(WSPath, upgrade); got != http.StatusBadRequest {
		t.Errorf("upgrade without subprotocol: %d, want 400", got)
	}
	if _, err := dialWS(t, "ws://"+addr+WSPath, "", nil); err == nil {
		t.Error("a WebSocket without the mqtt subprotocol was accepted")
	}
	if _, err := dialWS(t, "ws://"+addr+WSPath, "chat", nil); err == nil {
		t.Error("a WebSocket with subprotocol chat was accepted")
	}

	// A client that sends half a request is cut off by ReadHeaderTimeout.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("GET /mqtt HTTP/1.1\r\nHost: x\r\n"))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	buf := make([]byte, 512)
	for {
		if _, err := nc.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("slow HTTP client still connected after 5s")
			}
			break
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow HTTP client closed after %v", d)
	}
}

func TestWS_RemoteAddressIsPeer(t *testing.T) {
	s, addr := newTestListener(t, testOptions(), ListenerOptions{WebSocket: true})
	c := dialRawWS(t, "ws://"+addr+WSPath, nil, packet.V5)
	c.mustConnect("remote", true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for cn := range s.conns {
		host, _, err := net.SplitHostPort(cn.remote)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("remote %q, want 127.0.0.1:port", cn.remote)
		}
	}
}

func TestWS_KeepAliveTimeout(t *testing.T) {
	_, addr := newTestListener(t, testOptions(), ListenerOptions{WebSocket: true})
	c := dialRawWS(t, "ws://"+addr+WSPath, nil, packet.V311)
	if ack := c.connect(&packet.Connect{ClientID: "ka", CleanStart: true, KeepAlive: 1}); ack.Reason != packet.Success {
		t.Fatal(ack.Reason)
	}
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d < time.Second || d > 4*time.Second {
		t.Fatalf("closed after %v, want about 1.5s", d)
	}
}

func TestWS_PahoClient(t *testing.T) {
	_, addr := newTestListener(t, testOptions(), ListenerOptions{WebSocket: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// paho writes a packet in pieces on a connection without writev
	// (TLS, WebSocket), and from more than one goroutine (its pinger,
	// its replies to incoming packets, the caller's requests): pieces of
	// two packets written at once interleave, and the broker rightly
	// closes the connection. So: KeepAlive 0, and the publisher and the
	// subscriber are two clients, each exchange then runs one write at
	// a time.
	dial := func(id string, onPublish func(paho.PublishReceived) (bool, error)) *paho.Client {
		ws, err := dialWS(t, "ws://"+addr+WSPath, "mqtt", nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := paho.ClientConfig{Conn: websocket.NetConn(context.Background(), ws, websocket.MessageBinary)}
		if onPublish != nil {
			cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){onPublish}
		}
		c := paho.NewClient(cfg)
		if ack, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true}); err != nil || ack.ReasonCode != 0 {
			t.Fatalf("connect %s: %v %+v", id, err, ack)
		}
		return c
	}
	msgs := make(chan *paho.Publish, 1)
	sub := dial("paho-ws-sub", func(pr paho.PublishReceived) (bool, error) { msgs <- pr.Packet; return true, nil })
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "paho/ws", QoS: 2}}}); err != nil {
		t.Fatal(err)
	}
	pub := dial("paho-ws-pub", nil)
	if _, err := pub.Publish(ctx, &paho.Publish{Topic: "paho/ws", QoS: 2, Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-msgs:
		if p.Topic != "paho/ws" || string(p.Payload) != "x" || p.QoS != 2 {
			t.Fatalf("got %q %q QoS %d", p.Topic, p.Payload, p.QoS)
		}
	case <-ctx.Done():
		t.Fatal("no message over WebSocket")
	}
	pub.Disconnect(&paho.Disconnect{})
}

func TestWS_TLSIdentityAsUsername(t *testing.T) {
	ca := newTestCA(t, "ca")
	cfg, _ := tlsSetup{ca: ca, server: ca.issue(t, "server", true, nil), clientCA: ca.pem, require: true}.load(t)
	acl := &fakeACL{}
	_, addr := newTestListener(t, testOptions(), ListenerOptions{
		WebSocket: true, TLS: cfg.Config(), UseIdentityAsUsername: true,
		Auth: NewAuth(AuthPolicy{ACL: acl}),
	})
	url := "wss://" + addr + WSPath
	c := dialRawWS(t, url, clientTLS(ca, ca.issue(t, "gateway-9", false, nil)), packet.V5)
	c.mustConnect("wss-id", true)
	c.subscribe(1, packet.Subscription{Filter: "x"})
	if got := acl.lastUser("subscribe"); got != "gateway-9" {
		t.Fatalf("user %q, want gateway-9", got)
	}
	if _, err := dialWS(t, url, "mqtt", clientTLS(ca, nil)); err == nil {
		t.Fatal("wss without the required client certificate was accepted")
	}
}

func TestWS_ShutdownClosesWebSockets(t *testing.T) {
	s := New(testOptions())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.ServeListener(ln, ListenerOptions{WebSocket: true}) }()
	url := "ws://" + ln.Addr().String() + WSPath
	v3 := dialRawWS(t, url, nil, packet.V311)
	v3.mustConnect("v3", true)
	v5 := dialRawWS(t, url, nil, packet.V5)
	v5.mustConnect("v5", true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-errc; err != ErrServerClosed {
		t.Fatalf("serve: %v", err)
	}
	v5.expectDisconnect(packet.ServerShuttingDown)
	v3.expectClosed()
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still open")
	}
}
