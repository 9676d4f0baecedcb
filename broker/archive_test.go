package broker

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gatemq/boltstore"
	"gatemq/broker/packet"
	"gatemq/internal/testkit"
	"gatemq/internal/topic"
	"gatemq/session"
)

func openArchive(t testing.TB, rules ...string) *boltstore.Archive {
	t.Helper()
	o := boltstore.ArchiveOptions{Match: topic.Match}
	for _, r := range rules {
		o.Rules = append(o.Rules, boltstore.ArchiveRule{Filter: r})
	}
	a, err := boltstore.OpenArchive(t.TempDir(), &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// archived lists what the archive holds, decoded, oldest first.
func archived(t *testing.T, a *boltstore.Archive) []*session.Message {
	t.Helper()
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	p, err := a.List(boltstore.ArchiveQuery{Match: func(string) bool { return true }, Limit: 1000})
	if err != nil || p.Corrupt != 0 {
		t.Fatalf("list: %v, %d corrupt", err, p.Corrupt)
	}
	var out []*session.Message
	for _, r := range p.Records {
		m, err := session.DecodeMessage(r.Topic, r.Meta, r.Payload)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// Every message the broker takes on an archived topic is stored once,
// with no subscriber at all: QoS 0, 1 and 2 (a resent QoS 2 PUBLISH
// only once), retained ones, v5 properties, and wills; refused ones and
// other topics are not.
func TestServer_ArchiveEveryMessageOnce(t *testing.T) {
	a := openArchive(t, "dev/#", "$SYS/x") // a client may not publish there
	opts := testOptions()
	opts.Archive = a
	_, addr := newTestBroker(t, opts)

	v3 := dialRaw(t, addr, packet.V311)
	v3.mustConnect("dev-3", true)
	v3.send(&packet.Publish{Topic: "dev/3/a", Payload: []byte("q0")})
	v3.publishAck(&packet.Publish{Topic: "dev/3/a", QoS: 1, PacketID: 1, Payload: []byte("q1"), Retain: true})
	// QoS 2, sent twice before its PUBREL: one message.
	v3.send(&packet.Publish{Topic: "dev/3/b", QoS: 2, PacketID: 2, Payload: []byte("q2")})
	if r, ok := v3.recv().(*packet.Pubrec); !ok || r.PacketID != 2 {
		t.Fatalf("want PUBREC 2, got %+v", r)
	}
	v3.send(&packet.Publish{Topic: "dev/3/b", QoS: 2, PacketID: 2, Dup: true, Payload: []byte("q2")})
	v3.recv() // PUBREC again
	v3.send(&packet.Pubrel{PacketID: 2})
	v3.recv() // PUBCOMP
	v3.publishAck(&packet.Publish{Topic: "other/x", QoS: 1, PacketID: 3, Payload: []byte("not archived")})
	v3.publishAck(&packet.Publish{Topic: "$SYS/x", QoS: 1, PacketID: 4, Payload: []byte("refused")})

	v5 := dialRaw(t, addr, packet.V5)
	props := packet.Properties{ContentType: "text/plain", ResponseTopic: "dev/5/reply", CorrelationData: []byte{1, 2},
		PayloadFormat: 1, MessageExpiry: 60, User: []packet.UserProperty{{Key: "k", Value: "v"}}}
	props.Present.Add(packet.PropContentType)
	props.Present.Add(packet.PropResponseTopic)
	props.Present.Add(packet.PropCorrelationData)
	props.Present.Add(packet.PropPayloadFormat)
	props.Present.Add(packet.PropMessageExpiry)
	ack := v5.connect(&packet.Connect{ClientID: "dev-5", CleanStart: true, KeepAlive: 60, WillFlag: true, WillQoS: 1,
		WillTopic: "dev/5/status", WillPayload: []byte("gone")})
	if ack.Reason != packet.Success {
		t.Fatalf("connect: %v", ack.Reason)
	}
	if r := v5.publishAck(&packet.Publish{Topic: "dev/5/a", QoS: 1, PacketID: 1, Payload: []byte("v5"), Properties: props}); r != packet.NoMatchingSubscribers {
		t.Fatalf("PUBACK %v: the archive is not a subscriber", r)
	}
	v5.nc.Close() // no DISCONNECT: the will goes

	want := []struct {
		topic, payload, from string
		qos                  byte
		retain               bool
	}{
		{"dev/3/a", "q0", "dev-3", 0, false},
		{"dev/3/a", "q1", "dev-3", 1, true},
		{"dev/3/b", "q2", "dev-3", 2, false},
		{"dev/5/a", "v5", "dev-5", 1, false},
		{"dev/5/status", "gone", "dev-5", 1, false},
	}
	var got []*session.Message
	testkit.WaitFor(t, 5*time.Second, func() error {
		if got = archived(t, a); len(got) < len(want) {
			return fmt.Errorf("%d of %d archived", len(got), len(want))
		}
		return nil
	})
	if len(got) != len(want) {
		t.Fatalf("archived %d messages, want %d", len(got), len(want))
	}
	for i, w := range want {
		m := got[i]
		if m.Topic != w.topic || string(m.Payload) != w.payload || m.From != w.from || m.QoS != w.qos || m.Retain != w.retain {
			t.Errorf("message %d: %s %q from %s qos %d retain %v, want %+v", i, m.Topic, m.Payload, m.From, m.QoS, m.Retain, w)
		}
	}
	p := got[3].Props
	if p.ContentType != "text/plain" || p.ResponseTopic != "dev/5/reply" || string(p.CorrelationData) != "\x01\x02" ||
		!p.Present.Has(packet.PropPayloadFormat) || p.PayloadFormat != 1 || !slices.Equal(p.User, props.User) || got[3].Expires == 0 {
		t.Errorf("v5 properties: %+v, expires %d", p, got[3].Expires)
	}
}

// The broker's own $SYS messages are archived when a rule names them,
// and not by "#".
func TestServer_ArchiveSys(t *testing.T) {
	a := openArchive(t, "#", "$SYS/broker/uptime")
	opts := testOptions()
	opts.SysInterval = time.Second
	opts.Archive = a
	newTestBroker(t, opts)
	testkit.WaitFor(t, 5*time.Second, func() error {
		got := archived(t, a)
		if len(got) == 0 {
			return fmt.Errorf("nothing archived")
		}
		for _, m := range got {
			if m.Topic != "$SYS/broker/uptime" || !strings.HasSuffix(string(m.Payload), "seconds") {
				return fmt.Errorf("archived %s %q", m.Topic, m.Payload)
			}
		}
		return nil
	})
}

func BenchmarkServer_QoS0OneToOneArchive(b *testing.B) {
	opts := testOptions()
	opts.Archive = openArchive(b, "#")
	benchPubSubWith(b, 0, opts)
}

func BenchmarkServer_QoS1OneToOneArchive(b *testing.B) {
	opts := testOptions()
	opts.Archive = openArchive(b, "#")
	benchPubSubWith(b, 1, opts)
}

// A rule on the client events keeps a history of connects and
// disconnects.
func TestServer_ArchiveClientEvents(t *testing.T) {
	a := openArchive(t, "$SYS/brokers/+/clients/#")
	opts := testOptions()
	opts.Archive = a
	_, addr := newTestBroker(t, opts)
	c := dialRaw(t, addr, packet.V311)
	c.mustConnect("dev-7", true)
	c.disconnect()
	testkit.WaitFor(t, 5*time.Second, func() error {
		var got []string
		for _, m := range archived(t, a) {
			if !strings.Contains(string(m.Payload), `"client_id":"dev-7"`) {
				return fmt.Errorf("archived %s %s", m.Topic, m.Payload)
			}
			got = append(got, m.Topic[strings.LastIndexByte(m.Topic, '/')+1:])
		}
		if !slices.Equal(got, []string{"connected", "disconnected"}) {
			return fmt.Errorf("archived events %v", got)
		}
		return nil
	})
}
