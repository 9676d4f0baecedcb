package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// mqttConn is a raw MQTT connection to the binary.
type mqttConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
	v  packet.Version
}

func newMQTTConn(t *testing.T, nc net.Conn, v packet.Version) *mqttConn {
	t.Cleanup(func() { nc.Close() })
	return &mqttConn{t: t, nc: nc, br: bufio.NewReader(nc), v: v}
}

func (c *mqttConn) send(pk packet.Packet) {
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.nc.Write(packet.Append(nil, pk, c.v))
}

func (c *mqttConn) recv(d time.Duration) (packet.Packet, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	return packet.Read(c.br, c.v, 0)
}

func (c *mqttConn) mustRecv() packet.Packet {
	c.t.Helper()
	pk, err := c.recv(5 * time.Second)
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return pk
}

// connect sends CONNECT (user "" sends no user name) and returns the
// CONNACK reason and, for 3.x, the raw return code on the wire.
func (c *mqttConn) connect(id, user, pass string) packet.Reason {
	c.t.Helper()
	cp := &packet.Connect{ProtocolName: "MQTT", Version: c.v, ClientID: id, CleanStart: true, KeepAlive: 30}
	if c.v == packet.V31 {
		cp.ProtocolName = "MQIsdp"
	}
	if user != "" {
		cp.UsernameFlag, cp.Username = true, user
	}
	if pass != "" {
		cp.PasswordFlag, cp.Password = true, []byte(pass)
	}
	c.send(cp)
	ack, ok := c.mustRecv().(*packet.Connack)
	if !ok {
		c.t.Fatal("no CONNACK")
	}
	return ack.Reason
}

func (c *mqttConn) subscribe(filter string) packet.Reason {
	c.t.Helper()
	c.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: 1}}})
	ack, ok := c.mustRecv().(*packet.Suback)
	if !ok {
		c.t.Fatal("no SUBACK")
	}
	return ack.Reasons[0]
}

func (c *mqttConn) publish(topic, payload string) packet.Reason {
	c.t.Helper()
	c.send(&packet.Publish{Topic: topic, QoS: 1, PacketID: 2, Payload: []byte(payload)})
	ack, ok := c.mustRecv().(*packet.Puback)
	if !ok {
		c.t.Fatal("no PUBACK")
	}
	return ack.Reason
}

func dialMQTT(t *testing.T, addr string, v packet.Version) *mqttConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return newMQTTConn(t, nc, v)
}

func dialMQTTS(t *testing.T, addr string, cfg *tls.Config, v packet.Version) *mqttConn {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return newMQTTConn(t, nc, v)
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, func() error {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
		}
		return err
	})
}

// waitLog waits for s in the broker's log.
func waitLog(t *testing.T, logs *testkit.Buffer, s string) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), s) {
			return fmt.Errorf("log lacks %q", s)
		}
		return nil
	})
}

// TestMain_AuthDoneMeans is issue 6's "done means" through the real
// binary: a config with a password file and an ACL refuses anonymous and
// wrong-password clients with the right codes and ACL-denied publishes
// and subscriptions, maps mTLS clients to user names the ACL uses, and
// a SIGHUP that revokes a permission stops deliveries.
func TestMain_AuthDoneMeans(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwords")
	if out, err := exec.Command(bin, "passwd", "-b", pwFile, "alice", "wonderland").CombinedOutput(); err != nil {
		t.Fatalf("gatemq passwd: %v\n%s", err, out)
	}
	const acl = `user alice
topic readwrite plant/#
topic read alarms/#
user sensor-1
topic write plant/sensor-1/#
`
	aclFile := writeTestFile(t, dir, "acl", []byte(acl))
	ca := newPKICA(t)
	server := ca.issue(t, "gatemq", true)
	tlsAddr := testkit.FreeAddr(t)
	cfg := writeTestFile(t, dir, "gatemq.toml", fmt.Appendf(nil, `[mqtt]
sys_interval = "0"

[[listener]]
address = "127.0.0.1:1883"  # replaced by -listen
allow_anonymous = false     # the default only for addresses that are not loopback-only
password_file = %q
acl_file = %q

[[listener]]
address = %q
tls_cert = %q
tls_key = %q
client_ca = %q
require_certificate = true
use_identity_as_username = true
acl_file = %q
`, pwFile, aclFile, tlsAddr, writeTestFile(t, dir, "server.pem", server.certPEM),
		writeTestFile(t, dir, "server.key", server.keyPEM), writeTestFile(t, dir, "ca.pem", ca.pem), aclFile))
	cmd, addr, logs := startBroker(t, "-config", cfg)
	waitListening(t, tlsAddr)

	// Anonymous: Not authorized, 3.x return code 5.
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		if got := dialMQTT(t, addr, v).connect("anon-"+v.String(), "", ""); got != packet.NotAuthorized {
			t.Errorf("%s anonymous: CONNACK %v, want 0x87/5", v, got)
		}
	}
	// Wrong password: Bad user name or password, 3.x return code 4.
	for _, v := range []packet.Version{packet.V31, packet.V311, packet.V5} {
		if got := dialMQTT(t, addr, v).connect("bad-"+v.String(), "alice", "looking-glass"); got != packet.BadUserNameOrPassword {
			t.Errorf("%s wrong password: CONNACK %v, want 0x86/4", v, got)
		}
	}
	// Right password, every version.
	var alice *mqttConn
	for _, v := range []packet.Version{packet.V31, packet.V311, packet.V5} {
		c := dialMQTT(t, addr, v)
		if got := c.connect("alice-"+v.String(), "alice", "wonderland"); got != packet.Success {
			t.Fatalf("%s right password: CONNACK %v", v, got)
		}
		alice = c
	}
	// ACL: subscriptions and publishes outside alice's topics are refused.
	if got := alice.subscribe("secret/#"); got != packet.NotAuthorized {
		t.Errorf("subscribe secret/#: %v, want 0x87", got)
	}
	if got := alice.publish("secret/x", "x"); got != packet.NotAuthorized {
		t.Errorf("publish secret/x: %v, want 0x87", got)
	}
	if got := alice.subscribe("plant/#"); got != packet.GrantedQoS1 {
		t.Fatalf("subscribe plant/#: %v", got)
	}

	// An mTLS client is user sensor-1 by its certificate, and the ACL
	// treats it so.
	sensor := dialMQTTS(t, tlsAddr, ca.clientConfig(ca.issue(t, "sensor-1", false)), packet.V5)
	if got := sensor.connect("s1", "", ""); got != packet.Success {
		t.Fatalf("mTLS client: CONNACK %v", got)
	}
	if got := sensor.publish("plant/sensor-2/temp", "1"); got != packet.NotAuthorized {
		t.Errorf("sensor-1 publishing as sensor-2: %v, want 0x87", got)
	}
	if got := sensor.publish("plant/sensor-1/temp", "21.5"); got != packet.Success {
		t.Fatalf("sensor-1 publishing: %v", got)
	}
	p, ok := alice.mustRecv().(*packet.Publish)
	if !ok || p.Topic != "plant/sensor-1/temp" || string(p.Payload) != "21.5" {
		t.Fatalf("alice got %+v", p)
	}
	alice.send(&packet.Puback{PacketID: p.PacketID})

	// Without a certificate the TLS listener refuses the handshake.
	if nc, err := tls.Dial("tcp", tlsAddr, ca.clientConfig(nil)); err == nil {
		c := newMQTTConn(t, nc, packet.V5)
		c.send(&packet.Connect{ProtocolName: "MQTT", Version: packet.V5, ClientID: "nocert", CleanStart: true})
		if pk, err := c.recv(5 * time.Second); err == nil {
			t.Errorf("client without certificate got %+v", pk)
		}
	}

	// Revoke alice's read on plant/# and reload: her subscription stays
	// but delivers nothing more.
	os.WriteFile(aclFile, []byte(strings.Replace(acl, "topic readwrite plant/#", "topic write plant/#", 1)), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, "reloaded acl_file")
	if got := sensor.publish("plant/sensor-1/temp", "22.0"); got != packet.Success {
		t.Fatalf("sensor-1 publishing after reload: %v", got)
	}
	if pk, err := alice.recv(300 * time.Millisecond); err == nil {
		t.Fatalf("alice got %+v after her read permission was revoked", pk)
	}
	if strings.Contains(logs.String(), "wonderland") {
		t.Error("a password reached the log")
	}
}

func TestMain_TLSReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca := newPKICA(t)
	first := ca.issue(t, "first", true)
	certFile := writeTestFile(t, dir, "server.pem", first.certPEM)
	keyFile := writeTestFile(t, dir, "server.key", first.keyPEM)
	tlsAddr := testkit.FreeAddr(t)
	cfg := writeTestFile(t, dir, "gatemq.toml", fmt.Appendf(nil, `[[listener]]
address = "127.0.0.1:1883"
[[listener]]
address = %q
tls_cert = %q
tls_key = %q
`, tlsAddr, certFile, keyFile))
	cmd, _, logs := startBroker(t, "-config", cfg)
	waitListening(t, tlsAddr)
	serverCN := func() string {
		tc, err := tls.Dial("tcp", tlsAddr, ca.clientConfig(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := serverCN(); got != "first" {
		t.Fatalf("certificate %q, want first", got)
	}
	// A broken key is refused and the certificate in use is kept.
	os.WriteFile(keyFile, []byte("not a key"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, "keeping those in use")
	if got := serverCN(); got != "first" {
		t.Fatalf("after a bad reload: certificate %q, want first", got)
	}
	second := ca.issue(t, "second", true)
	os.WriteFile(certFile, second.certPEM, 0o600)
	os.WriteFile(keyFile, second.keyPEM, 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got := serverCN(); got != "second" {
			return fmt.Errorf("certificate %q, want second", got)
		}
		return nil
	})
}

// A listener whose files are missing or invalid stops the broker at
// start with exit code 2 and the config key in the message.
func TestMain_BadListenerFilesRefuseToStart(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	ca := newPKICA(t)
	server := ca.issue(t, "gatemq", true)
	cert := writeTestFile(t, dir, "server.pem", server.certPEM)
	key := writeTestFile(t, dir, "server.key", server.keyPEM)
	empty := writeTestFile(t, dir, "empty.pem", nil)
	tests := []struct {
		name, listener, want string
	}{
		{"empty CA", fmt.Sprintf("tls_cert = %q\ntls_key = %q\nclient_ca = %q\n", cert, key, empty),
			"listener[0].client_ca: " + empty + ": no PEM certificate found"},
		{"invalid CA", fmt.Sprintf("tls_cert = %q\ntls_key = %q\nclient_ca = %q\n", cert, key, key),
			"listener[0].client_ca"},
		{"missing key", fmt.Sprintf("tls_cert = %q\ntls_key = %q\n", cert, dir+"/nope.key"),
			"listener[0].tls_key: " + dir + "/nope.key: no such file or directory"},
		{"invalid CRL", fmt.Sprintf("tls_cert = %q\ntls_key = %q\nclient_ca = %q\ncrl_file = %q\n", cert, key,
			writeTestFile(t, dir, "ca.pem", ca.pem), cert), "listener[0].crl_file"},
		{"bad ACL", fmt.Sprintf("acl_file = %q\n", writeTestFile(t, dir, "acl", []byte("topc read a/b\n"))),
			"listener[0].acl_file"},
		{"missing password file", fmt.Sprintf("password_file = %q\n", dir+"/nope"), "listener[0].password_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeTestFile(t, t.TempDir(), "gatemq.toml", []byte("[[listener]]\naddress = \"127.0.0.1:0\"\n"+tc.listener))
			out, err := exec.Command(bin, "-config", cfg, "-data-dir", t.TempDir()).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want 2; output:\n%s", err, out)
			}
			if !bytes.Contains(out, []byte(cfg+": "+tc.want)) {
				t.Fatalf("output lacks %q:\n%s", cfg+": "+tc.want, out)
			}
		})
	}
}

func TestMain_ListenerLettingNobodyInWarns(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTestFile(t, dir, "gatemq.toml", []byte("[[listener]]\naddress = \"127.0.0.1:1883\"\nallow_anonymous = false\n"))
	_, _, logs := startBroker(t, "-config", cfg)
	waitLog(t, logs, "listener lets no client in")
}
