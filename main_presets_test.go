package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

// gatemq runs the binary with args and returns its combined output,
// failing the test unless it exits with code want.
func gatemq(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, err := exec.Command(buildBinary(t), args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != want {
		t.Fatalf("gatemq %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return string(out)
}

var spaces = regexp.MustCompile(` +`)

// mustContain checks that out holds every one of wants, runs of spaces
// (a table's padding) counting as one.
func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(spaces.ReplaceAllString(out, " "), w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

// settle sends PINGREQ and waits for PINGRESP: the broker has handled
// everything the client sent before, and its presets are applied.
func (c *mqttConn) settle() {
	c.t.Helper()
	c.send(&packet.Pingreq{})
	if pk := c.mustRecv(); pk.Type() != packet.PINGRESP {
		c.t.Fatalf("got %s %+v, want PINGRESP", pk.Type(), pk)
	}
}

// recvPublish reads packets until a PUBLISH and acknowledges it.
func (c *mqttConn) recvPublish() *packet.Publish {
	c.t.Helper()
	for {
		if p, ok := c.mustRecv().(*packet.Publish); ok {
			if p.QoS == 1 {
				c.send(&packet.Puback{PacketID: p.PacketID})
			}
			return p
		}
	}
}

// expectMessages reads PUBLISH packets and checks "topic=payload", in
// order.
func (c *mqttConn) expectMessages(want ...string) {
	c.t.Helper()
	for _, w := range want {
		p := c.recvPublish()
		if got := p.Topic + "=" + string(p.Payload); got != w {
			c.t.Fatalf("received %s, want %s", got, w)
		}
	}
}

// connectDurable connects clientID with MQTT 5 and a session expiry of
// an hour, without clean start.
func connectDurable(t *testing.T, addr, clientID string) (*mqttConn, bool) {
	t.Helper()
	c := dialMQTT(t, addr, packet.V5)
	props := packet.Properties{SessionExpiry: 3600}
	props.Present.Add(packet.PropSessionExpiry)
	c.send(&packet.Connect{ProtocolName: "MQTT", Version: packet.V5, ClientID: clientID, KeepAlive: 30, Properties: props})
	ack, ok := c.mustRecv().(*packet.Connack)
	if !ok || ack.Reason != packet.Success {
		t.Fatalf("connect %s: %+v", clientID, ack)
	}
	return c, ack.SessionPresent
}

// TestMain_PresetsCLI: preset subscriptions through the real binary, for
// 3.1, 3.1.1 and 5.0 clients: a config rule with %c and %u, gatemq
// presets set/list/delete through the admin socket while the client is
// connected, SIGHUP reloading the rules, and the data directory after a
// kill -9: stored presets and the subscriptions they made survive, and
// presets changed with the broker stopped apply at the next connection.
func TestMain_PresetsCLI(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatemq.toml")
	// User names count for %u only when a password file checks them.
	passwords := filepath.Join(dir, "passwords")
	for _, id := range []string{"dev-31", "dev-311", "dev-5"} {
		gatemq(t, 0, "passwd", "-b", passwords, "user-"+id, "pw-"+id)
	}
	writeCfg := func(rules string) {
		listener := "[[listener]]\naddress = \"127.0.0.1:0\"\nallow_anonymous = true\npassword_file = \"" + passwords + "\"\n\n"
		if err := os.WriteFile(cfgPath, []byte(listener+rules), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("[[preset_subscription]]\ntopic = \"devices/%c/cmd\"\nqos = 1\n\n" +
		"[[preset_subscription]]\nclient = \"dev-31\"\ntopic = \"users/%u/inbox\"\nqos = 1\n")
	addr := testkit.FreeAddr(t)
	cmd := exec.Command(bin, "-config", cfgPath, "-listen", addr, "-data-dir", dir)
	logs := runBroker(t, cmd, addr)
	testkit.WaitFor(t, 10*time.Second, func() error { // the admin socket answers
		_, err := exec.Command(bin, "clients", "-data-dir", dir).CombinedOutput()
		return err
	})

	pub := dialMQTT(t, addr, packet.V311)
	pub.connect("pub", "", "")
	clients := map[string]*mqttConn{}
	for id, v := range map[string]packet.Version{"dev-31": packet.V31, "dev-311": packet.V311, "dev-5": packet.V5} {
		c := dialMQTT(t, addr, v)
		if r := c.connect(id, "user-"+id, "pw-"+id); r != packet.Success {
			t.Fatalf("connect %s: %v", id, r)
		}
		c.settle()
		clients[id] = c
	}
	for id, c := range clients {
		pub.publish("devices/"+id+"/cmd", "hello "+id)
		c.expectMessages("devices/" + id + "/cmd=hello " + id)
	}
	pub.publish("users/user-dev-31/inbox", "mail")
	clients["dev-31"].expectMessages("users/user-dev-31/inbox=mail")

	// Stored presets, set while the clients are connected, apply at once.
	for id := range clients {
		out := gatemq(t, 0, "presets", "set", id, "extra/"+id+"/#", "1", "-data-dir", dir)
		mustContain(t, out, "applied to the connected client")
	}
	for id, c := range clients {
		pub.publish("extra/"+id+"/x", "extra")
		c.expectMessages("extra/" + id + "/x=extra")
	}
	out := gatemq(t, 0, "presets", "list", "dev-31", "-data-dir", dir)
	mustContain(t, out, "dev-31 devices/dev-31/cmd 1 retain-handling=0 config", "dev-31 extra/dev-31/# 1 retain-handling=0 stored",
		"dev-31 users/user-dev-31/inbox 1 retain-handling=0 config") // connected: %u known
	out = gatemq(t, 0, "presets", "list", "-data-dir", dir, "-json")
	mustContain(t, out, `"client_id": "*"`, `"filter": "devices/%c/cmd"`, `"client_id": "dev-5"`, `"source": "stored"`)
	out = gatemq(t, 0, "sessions", "list", "-data-dir", dir)
	mustContain(t, out, "extra/dev-5/# (qos 1)", "devices/dev-5/cmd (qos 1)")

	// Deleted while connected: unsubscribed at once.
	out = gatemq(t, 0, "presets", "delete", "dev-311", "extra/dev-311/#", "-data-dir", dir)
	mustContain(t, out, "1 preset(s) of dev-311 deleted: applied to the connected client")
	pub.publish("extra/dev-311/x", "gone")
	pub.publish("devices/dev-311/cmd", "marker")
	clients["dev-311"].expectMessages("devices/dev-311/cmd=marker")
	out = gatemq(t, 1, "presets", "delete", "dev-311", "-data-dir", dir)
	mustContain(t, out, "no stored preset subscription for dev-311")
	gatemq(t, 2, "presets", "set", "dev-311", "a", "3", "-data-dir", dir)
	out = gatemq(t, 1, "presets", "set", "dev-311", "a/#/b", "1", "-data-dir", dir)
	mustContain(t, out, "invalid preset subscription")

	// SIGHUP reloads the rules: connected clients follow at once.
	writeCfg("[[preset_subscription]]\ntopic = \"new/%c\"\nqos = 1\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, "preset subscription rules reloaded")
	pub.publish("devices/dev-5/cmd", "old rule")
	pub.publish("new/dev-5", "new rule")
	clients["dev-5"].expectMessages("new/dev-5=new rule")

	// A durable session with a stored preset, then kill -9.
	gatemq(t, 0, "presets", "set", "dur", "jobs/dur", "1", "-data-dir", dir)
	dur, _ := connectDurable(t, addr, "dur")
	dur.settle()
	pub.publish("jobs/dur", "before")
	dur.expectMessages("jobs/dur=before")
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	// The data directory, with the broker stopped.
	out = gatemq(t, 0, "presets", "list", "-data-dir", dir)
	mustContain(t, out, "dur jobs/dur 1 retain-handling=0 stored", "dev-5 extra/dev-5/#")
	out = gatemq(t, 0, "presets", "list", "-config", cfgPath, "-data-dir", dir)
	mustContain(t, out, "* new/%c 1 retain-handling=0 config")
	out = gatemq(t, 0, "sessions", "list", "-data-dir", dir)
	mustContain(t, out, "jobs/dur (qos 1)")
	out = gatemq(t, 0, "presets", "set", "dur", "more/dur", "1", "-data-dir", dir)
	mustContain(t, out, "applies at the client's next connection")
	out = gatemq(t, 0, "presets", "delete", "dev-5", "-data-dir", dir)
	mustContain(t, out, "1 preset(s) of dev-5 deleted")

	cmd = exec.Command(bin, "-config", cfgPath, "-listen", addr, "-data-dir", dir)
	runBroker(t, cmd, addr)
	pub = dialMQTT(t, addr, packet.V311)
	pub.connect("pub", "", "")
	pub.publish("jobs/dur", "while away") // kept for the durable session
	dur, present := connectDurable(t, addr, "dur")
	if !present {
		t.Fatal("durable session lost")
	}
	p := dur.recvPublish()
	if string(p.Payload) == "before" {
		// QoS 1 is at least once: its PUBACK may not have reached the
		// store before the kill -9.
		p = dur.recvPublish()
	}
	if p.Topic != "jobs/dur" || string(p.Payload) != "while away" {
		t.Fatalf("durable session got %s %q, want jobs/dur while away", p.Topic, p.Payload)
	}
	dur.settle()
	pub.publish("more/dur", "set while stopped")
	dur.expectMessages("more/dur=set while stopped")
	out = gatemq(t, 0, "presets", "list", "-data-dir", dir)
	if strings.Contains(out, "dev-5") {
		t.Fatalf("deleted presets listed:\n%s", out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	// A backup holds them (export copies every bucket).
	out = gatemq(t, 0, "export", "-data-dir", dir)
	mustContain(t, out, `"bucket":["presets"],"key":"dur\u0000jobs/dur"`, `"bucket":["presets"],"key":"dur\u0000more/dur"`)
}

// TestMain_RetainedCLI: gatemq retained list/get/delete through the
// admin socket of the real binary, on messages published with
// mosquitto_pub, then on the data directory with the broker stopped.
func TestMain_RetainedCLI(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Skip("mosquitto_pub not installed (Debian mosquitto-clients)")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := testkit.FreeAddr(t)
	cmd := exec.Command(bin, "-listen", addr, "-data-dir", dir)
	runBroker(t, cmd, addr)
	testkit.WaitFor(t, 10*time.Second, func() error {
		_, err := exec.Command(bin, "clients", "-data-dir", dir).CombinedOutput()
		return err
	})
	host, port, _ := strings.Cut(addr, ":")
	binFile := filepath.Join(dir, "payload.bin")
	os.WriteFile(binFile, []byte{0x00, 0x01, 0xfe, 'x'}, 0o600)
	for _, args := range [][]string{
		{"-t", "plant/line1/state", "-m", "running fine", "-q", "1"},
		{"-t", "plant/line2/state", "-f", binFile},
		{"-t", "other/topic", "-m", "v5", "-V", "5", "-D", "publish", "content-type", "text/plain",
			"-D", "publish", "user-property", "site", "north", "-D", "publish", "message-expiry-interval", "3600"},
	} {
		a := append([]string{"-h", host, "-p", port, "-r", "-i", "mosq-pub"}, args...)
		if out, err := exec.Command("mosquitto_pub", a...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub %v: %v\n%s", a, err, out)
		}
	}

	out := gatemq(t, 0, "retained", "list", "-data-dir", dir)
	mustContain(t, out, "TOPIC", "plant/line1/state", "plant/line2/state", "other/topic", "mosq-pub")
	out = gatemq(t, 0, "retained", "list", "--topic", "plant/+/state", "-data-dir", dir)
	if strings.Contains(out, "other/topic") || !strings.Contains(out, "plant/line2/state") {
		t.Fatalf("retained list --topic:\n%s", out)
	}
	out = gatemq(t, 0, "retained", "get", "plant/line1/state", "-data-dir", dir)
	mustContain(t, out, "topic: plant/line1/state\nqos: 1\nbytes: 12\nfrom: mosq-pub\nstored: 20",
		"expires: never", "payload (text):\nrunning fine\n")
	if strings.Contains(out, "unknown") {
		t.Fatalf("no stored time:\n%s", out)
	}
	out = gatemq(t, 0, "retained", "get", "plant/line2/state", "-data-dir", dir)
	mustContain(t, out, "payload (hex dump):\n00000000 00 01 fe 78")
	out = gatemq(t, 0, "retained", "get", "other/topic", "-data-dir", dir, "--json")
	mustContain(t, out, `"content_type": "text/plain"`, `"key": "site"`, `"value": "north"`, `"payload_text": "v5"`,
		`"payload_base64": "djU="`, `"expires": "`)
	gatemq(t, 1, "retained", "get", "no/such", "-data-dir", dir)

	out = gatemq(t, 0, "retained", "delete", "plant/line1/state", "-data-dir", dir)
	mustContain(t, out, "deleted the retained message on plant/line1/state")
	gatemq(t, 1, "retained", "delete", "plant/line1/state", "-data-dir", dir)
	sub := dialMQTT(t, addr, packet.V311)
	sub.connect("sub", "", "")
	sub.subscribe("plant/#")
	if p := sub.recvPublish(); p.Topic != "plant/line2/state" {
		t.Fatalf("new subscriber got %q", p.Topic)
	}

	// The data directory, with the broker stopped.
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	out = gatemq(t, 0, "retained", "list", "-data-dir", dir)
	if strings.Contains(out, "plant/line1/state") || !strings.Contains(out, "plant/line2/state") {
		t.Fatalf("data directory list:\n%s", out)
	}
	out = gatemq(t, 0, "retained", "get", "other/topic", "-data-dir", dir)
	mustContain(t, out, "content type: text/plain", `user property: "site" = "north"`, "payload (text):\nv5\n")
	out = gatemq(t, 0, "retained", "delete", "plant/line2/state", "-data-dir", dir, "-json")
	mustContain(t, out, `"deleted": "plant/line2/state"`)
	gatemq(t, 1, "retained", "delete", "plant/line2/state", "-data-dir", dir)

	cmd = exec.Command(bin, "-listen", addr, "-data-dir", dir)
	runBroker(t, cmd, addr)
	sub = dialMQTT(t, addr, packet.V311)
	sub.connect("sub", "", "")
	sub.subscribe("#")
	if p := sub.recvPublish(); p.Topic != "other/topic" {
		t.Fatalf("after the restart a subscriber to # got %q first", p.Topic)
	}
	pub := dialMQTT(t, addr, packet.V311)
	pub.connect("pub", "", "")
	pub.publish("marker", "m")
	if p := sub.recvPublish(); p.Topic != "marker" {
		t.Fatalf("got %q, want the marker: a deleted retained message came back", p.Topic)
	}
}
