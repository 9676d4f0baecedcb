package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/broker/packet"
)

// roundTrip subscribes with sub and publishes with pub, then checks that
// the message arrives: both clients are connected.
func roundTrip(t *testing.T, sub, pub *rawClient, topic string) {
	t.Helper()
	if ack := sub.subscribe(1, packet.Subscription{Filter: topic, QoS: 1}); ack.Reasons[0] != packet.GrantedQoS1 {
		t.Fatalf("suback %v", ack.Reasons)
	}
	pub.publishAck(&packet.Publish{Topic: topic, QoS: 1, PacketID: 7, Payload: []byte("hello")})
	if p := sub.recvPublishAck(); p.Topic != topic || string(p.Payload) != "hello" {
		t.Fatalf("got %q %q", p.Topic, p.Payload)
	}
}

func TestTLS_RawClientsRoundTrip(t *testing.T) {
	ca := newTestCA(t, "ca")
	cfg, _ := tlsSetup{ca: ca, server: ca.issue(t, "server", true, nil)}.load(t)
	_, addr := newTestListener(t, testOptions(), ListenerOptions{TLS: cfg.Config()})

	for _, v := range []packet.Version{packet.V31, packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			sub := dialRawTLS(t, addr, clientTLS(ca, nil), v)
			sub.mustConnect("tls-sub-"+v.String(), true)
			pub := dialRawTLS(t, addr, clientTLS(ca, nil), v)
			pub.mustConnect("tls-pub-"+v.String(), true)
			roundTrip(t, sub, pub, "tls/"+v.String())
		})
	}
}

func TestTLS_PahoClient(t *testing.T) {
	ca := newTestCA(t, "ca")
	cfg, _ := tlsSetup{ca: ca, server: ca.issue(t, "server", true, nil)}.load(t)
	_, addr := newTestListener(t, testOptions(), ListenerOptions{TLS: cfg.Config()})

	tc, err := dialTLS(t, addr, clientTLS(ca, nil))
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan *paho.Publish, 1)
	c := paho.NewClient(paho.ClientConfig{
		Conn: tc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { msgs <- pr.Packet; return true, nil },
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// KeepAlive 0: paho's pinger writes PINGREQ from its own goroutine,
	// and on a connection without writev (TLS, WebSocket) its bytes can
	// land inside a packet another goroutine is writing in pieces.
	if ack, err := c.Connect(ctx, &paho.Connect{ClientID: "paho-tls", CleanStart: true}); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect: %v %+v", err, ack)
	}
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "paho/tls", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, &paho.Publish{Topic: "paho/tls", QoS: 1, Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-msgs:
		if p.Topic != "paho/tls" {
			t.Fatalf("got %q", p.Topic)
		}
	case <-ctx.Done():
		t.Fatal("no message over TLS")
	}
	c.Disconnect(&paho.Disconnect{})
}

// tlsRefused checks that a client with cfg cannot use the broker: the
// handshake fails, or (TLS 1.3, where the client finishes first) the
// connection closes instead of answering CONNECT.
func tlsRefused(t *testing.T, addr string, cfg *tls.Config) {
	t.Helper()
	tc, err := dialTLS(t, addr, cfg)
	if err != nil {
		return
	}
	c := rawOver(t, tc, packet.V311)
	c.send(&packet.Connect{ProtocolName: "MQTT", Version: packet.V311, ClientID: "refused", CleanStart: true, KeepAlive: 30})
	if pk, err := c.tryRecv(5 * time.Second); err == nil {
		t.Fatalf("refused client got %T %+v", pk, pk)
	} else if !isClosed(err) {
		t.Fatalf("connection still open: %v", err)
	}
}

func TestTLS_ClientCertificates(t *testing.T) {
	ca := newTestCA(t, "ca")
	other := newTestCA(t, "other-ca")
	server := ca.issue(t, "server", true, nil)
	good := ca.issue(t, "client-good", false, nil)
	revoked := ca.issue(t, "client-revoked", false, nil)
	stranger := other.issue(t, "stranger", false, nil)

	tests := []struct {
		name    string
		setup   tlsSetup
		cert    *testCert
		refused bool
	}{
		{"optional, none", tlsSetup{clientCA: ca.pem}, nil, false},
		{"optional, good", tlsSetup{clientCA: ca.pem}, good, false},
		{"optional, unknown CA", tlsSetup{clientCA: ca.pem}, stranger, true},
		{"required, none", tlsSetup{clientCA: ca.pem, require: true}, nil, true},
		{"required, good", tlsSetup{clientCA: ca.pem, require: true}, good, false},
		{"required, unknown CA", tlsSetup{clientCA: ca.pem, require: true}, stranger, true},
		{"crl, good", tlsSetup{clientCA: ca.pem, require: true, crl: ca.crl(t, revoked)}, good, false},
		{"crl, revoked", tlsSetup{clientCA: ca.pem, require: true, crl: ca.crl(t, revoked)}, revoked, true},
		{"crl optional, revoked", tlsSetup{clientCA: ca.pem, crl: ca.crl(t, revoked)}, revoked, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup.ca, tc.setup.server = ca, server
			cfg, _ := tc.setup.load(t)
			_, addr := newTestListener(t, testOptions(), ListenerOptions{TLS: cfg.Config()})
			if tc.refused {
				tlsRefused(t, addr, clientTLS(ca, tc.cert))
				return
			}
			c := dialRawTLS(t, addr, clientTLS(ca, tc.cert), packet.V311)
			c.mustConnect("mtls", true)
			c.ping()
		})
	}
}

func TestTLS_OldVersionsRefused(t *testing.T) {
	ca := newTestCA(t, "ca")
	cfg, _ := tlsSetup{ca: ca, server: ca.issue(t, "server", true, nil)}.load(t)
	_, addr := newTestListener(t, testOptions(), ListenerOptions{TLS: cfg.Config()})
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		cc := clientTLS(ca, nil)
		cc.MinVersion, cc.MaxVersion = v, v
		if _, err := dialTLS(t, addr, cc); err == nil {
			t.Errorf("TLS version %#x accepted", v)
		}
	}
	cc := clientTLS(ca, nil)
	cc.MaxVersion = tls.VersionTLS12
	c := dialRawTLS(t, addr, cc, packet.V5)
	c.mustConnect("tls12", true)
}

func TestTLS_PlainClientOnTLSListenerClosed(t *testing.T) {
	ca := newTestCA(t, "ca")
	cfg, _ := tlsSetup{ca: ca, server: ca.issue(t, "server", true, nil)}.load(t)
	o := testOptions()
	o.ConnectTimeout = 300 * time.Millisecond
	_, addr := newTestListener(t, o, ListenerOptions{TLS: cfg.Config()})

	// An MQTT client that forgot TLS gets no CONNACK.
	plain := dialRaw(t, addr, packet.V311)
	plain.send(&packet.Connect{ProtocolName: "MQTT", Version: packet.V311, ClientID: "plain", CleanStart: true})
	for _, pk := range plain.expectClosed() {
		if pk.Type() == packet.CONNACK {
			t.Fatal("plain client got CONNACK")
		}
	}
	// A client that opens TCP and says nothing is closed by the
	// connect timeout, not held by the handshake.
	silent := dialRaw(t, addr, packet.V311)
	start := time.Now()
	silent.expectClosed()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("silent TLS client closed after %v", d)
	}
}

func TestTLS_IdentityAsUsername(t *testing.T) {
	ca := newTestCA(t, "ca")
	server := ca.issue(t, "server", true, nil)
	cfg, _ := tlsSetup{ca: ca, server: server, clientCA: ca.pem}.load(t)
	acl := &fakeACL{}
	_, addr := newTestListener(t, testOptions(), ListenerOptions{
		TLS:                   cfg.Config(),
		UseIdentityAsUsername: true,
		Auth:                  NewAuth(AuthPolicy{ACL: acl}),
	})

	tests := []struct {
		name string
		cert *testCert
		want string // user name seen by the ACL; "" for a refusal
	}{
		{"common name", ca.issue(t, "sensor-7", false, nil), "sensor-7"},
		{"dns SAN without CN", ca.issue(t, "", false, func(c *x509.Certificate) { c.DNSNames = []string{"plc-3.local"} }), "plc-3.local"},
		{"email SAN without CN", ca.issue(t, "", false, func(c *x509.Certificate) { c.EmailAddresses = []string{"ops@example.com"} }), "ops@example.com"},
		{"no certificate", nil, ""},
		{"no identity", ca.issue(t, "", false, nil), ""},
	}
	for _, tc := range tests {
		for _, v := range []packet.Version{packet.V311, packet.V5} {
			t.Run(tc.name+"/"+v.String(), func(t *testing.T) {
				c := dialRawTLS(t, addr, clientTLS(ca, tc.cert), v)
				// The user name in CONNECT is replaced, and no password is needed.
				c.send(&packet.Connect{ProtocolName: "MQTT", Version: v, ClientID: "id-" + v.String(), CleanStart: true,
					KeepAlive: 30, UsernameFlag: true, Username: "spoofed"})
				if tc.want == "" {
					c.expectConnackClose(packet.BadUserNameOrPassword) // 3.x: return code 4
					return
				}
				if ack := c.recv().(*packet.Connack); ack.Reason != packet.Success {
					t.Fatalf("connack %v", ack.Reason)
				}
				c.subscribe(1, packet.Subscription{Filter: "who/am/i"})
				if got := acl.lastUser("subscribe"); got != tc.want {
					t.Fatalf("ACL saw user %q, want %q", got, tc.want)
				}
			})
		}
	}
}

func TestLoadTLS_Errors(t *testing.T) {
	ca := newTestCA(t, "ca")
	other := newTestCA(t, "other")
	server := ca.issue(t, "server", true, nil)
	wrongKey := ca.issue(t, "server2", true, nil)
	dir := t.TempDir()
	cert := writeFile(t, dir, "cert.pem", server.certPEM)
	key := writeFile(t, dir, "key.pem", server.keyPEM)
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	empty := writeFile(t, dir, "empty.pem", nil)
	garbage := writeFile(t, dir, "garbage.pem", []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"))
	tests := []struct {
		name  string
		files TLSFiles
		field string
	}{
		{"missing cert", TLSFiles{Cert: dir + "/nope.pem", Key: key}, "Cert"},
		{"empty cert", TLSFiles{Cert: empty, Key: key}, "Cert"},
		{"key mismatch", TLSFiles{Cert: cert, Key: writeFile(t, dir, "wrong.key", wrongKey.keyPEM)}, "Key"},
		{"missing key", TLSFiles{Cert: cert, Key: dir + "/nope.key"}, "Key"},
		{"empty CA", TLSFiles{Cert: cert, Key: key, ClientCA: empty}, "ClientCA"},
		{"invalid CA", TLSFiles{Cert: cert, Key: key, ClientCA: garbage}, "ClientCA"},
		{"key as CA", TLSFiles{Cert: cert, Key: key, ClientCA: key}, "ClientCA"},
		{"empty CRL", TLSFiles{Cert: cert, Key: key, ClientCA: caFile, CRL: empty}, "CRL"},
		{"CRL of another CA", TLSFiles{Cert: cert, Key: key, ClientCA: caFile, CRL: writeFile(t, dir, "other.crl", other.crl(t))}, "CRL"},
		{"invalid CRL", TLSFiles{Cert: cert, Key: key, ClientCA: caFile, CRL: writeFile(t, dir, "bad.crl", []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"))}, "CRL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadTLS(tc.files)
			var fe *TLSFileError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want a TLSFileError for %s", err, tc.field)
			}
			t.Log(err)
		})
	}
	if _, err := LoadTLS(TLSFiles{Cert: cert, Key: key, ClientCA: caFile, CRL: writeFile(t, dir, "ok.crl", ca.crl(t))}); err != nil {
		t.Fatalf("valid files: %v", err)
	}
}

func TestTLSConfig_ReloadSwapsCertificate(t *testing.T) {
	ca := newTestCA(t, "ca")
	first := ca.issue(t, "first", true, nil)
	cfg, files := tlsSetup{ca: ca, server: first}.load(t)
	_, addr := newTestListener(t, testOptions(), ListenerOptions{TLS: cfg.Config()})

	serverCN := func() string {
		t.Helper()
		tc, err := dialTLS(t, addr, clientTLS(ca, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := serverCN(); got != "first" {
		t.Fatalf("server certificate %q, want first", got)
	}
	// A client connected before the reload stays connected.
	old := dialRawTLS(t, addr, clientTLS(ca, nil), packet.V311)
	old.mustConnect("before-reload", true)

	second := ca.issue(t, "second", true, nil)
	os.WriteFile(files.Cert, second.certPEM, 0o600)
	os.WriteFile(files.Key, second.keyPEM, 0o600)
	if err := cfg.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serverCN(); got != "second" {
		t.Fatalf("after reload: server certificate %q, want second", got)
	}
	if got := cfg.Certificate().Subject.CommonName; got != "second" {
		t.Fatalf("Certificate() = %q", got)
	}
	old.ping()

	// A bad file keeps the configuration in use.
	os.WriteFile(files.Key, []byte("garbage"), 0o600)
	var fe *TLSFileError
	if err := cfg.Reload(); !errors.As(err, &fe) || fe.Field != "Key" {
		t.Fatalf("reload of a bad key: %v", err)
	}
	if got := serverCN(); got != "second" {
		t.Fatalf("after a failed reload: server certificate %q, want second", got)
	}
}
