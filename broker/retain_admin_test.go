package broker

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
	"gatemq/session"
)

// A retained message is listed, read with its payload, properties,
// publisher and stored time, and deleted from memory and the store: a
// new subscriber gets nothing, after a restart too.
func TestRetained_GetDelete(t *testing.T) {
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	before := time.Now()
	pub := connectV5(t, b.addr, &paho.Connect{ClientID: "pub-5", CleanStart: true})
	expiry := uint32(3600)
	pub.publish(&paho.Publish{Topic: "site/a/state", QoS: 1, Retain: true, Payload: []byte{0xff, 0x00, 'x'},
		Properties: &paho.PublishProperties{ContentType: "application/octet-stream", MessageExpiry: &expiry,
			CorrelationData: []byte{1, 2}, User: paho.UserProperties{{Key: "k", Value: "v"}}}})
	pub.publish(&paho.Publish{Topic: "site/b/state", QoS: 0, Retain: true, Payload: []byte("on")})
	pub.publish(&paho.Publish{Topic: "other", QoS: 0, Retain: true, Payload: []byte("o")})
	s := b.srv
	testkit.WaitFor(t, 5*time.Second, func() error {
		if n := len(s.RetainedMessages()); n != 3 {
			return errors.New("not all retained yet")
		}
		return nil
	})

	list, err := s.RetainedMatching("site/+/state")
	if err != nil || len(list) != 2 || list[0].Topic != "site/a/state" || list[1].Topic != "site/b/state" {
		t.Fatalf("RetainedMatching: %+v %v", list, err)
	}
	// Without a filter, as "#": not the broker's own $SYS topics.
	s.publish(&session.Message{Topic: "$SYS/broker/test", Payload: []byte("1"), Retain: true})
	if all, err := s.RetainedMatching(""); err != nil || len(all) != 3 || all[0].Topic != "other" {
		t.Fatalf("RetainedMatching(\"\"): %+v %v", all, err)
	}
	if sys, err := s.RetainedMatching("$SYS/#"); err != nil || len(sys) != 1 {
		t.Fatalf("RetainedMatching($SYS/#): %+v %v", sys, err)
	}
	if _, err := s.RetainedMatching("a/#/b"); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("bad filter: %v", err)
	}
	m, ok := s.RetainedMessage("site/a/state")
	if !ok {
		t.Fatal("no retained message")
	}
	if m.QoS != 1 || m.From != "pub-5" || m.Bytes != 3 || string(m.Payload) != "\xff\x00x" ||
		m.Props.ContentType != "application/octet-stream" || string(m.Props.CorrelationData) != "\x01\x02" ||
		len(m.Props.User) != 1 || m.Props.User[0].Key != "k" {
		t.Fatalf("retained message %+v", m)
	}
	if m.Stored.Before(before.Add(-time.Second)) || m.Stored.After(time.Now()) {
		t.Fatalf("stored at %v, published after %v", m.Stored, before)
	}
	if d := m.Expires.Sub(m.Stored); d < 3599*time.Second || d > 3601*time.Second {
		t.Fatalf("expires %v, stored %v", m.Expires, m.Stored)
	}
	if _, ok := s.RetainedMessage("site/+/state"); ok {
		t.Fatal("a filter found a message")
	}

	// The stored time and the rest survive a restart.
	b.restart()
	s = b.srv
	m2, ok := s.RetainedMessage("site/a/state")
	if !ok || !m2.Stored.Equal(m.Stored) || string(m2.Payload) != string(m.Payload) || m2.From != "pub-5" {
		t.Fatalf("after restart: %+v, want %+v", m2, m)
	}

	had, err := s.DeleteRetained("site/a/state")
	if !had || err != nil {
		t.Fatalf("DeleteRetained: %v %v", had, err)
	}
	if had, err := s.DeleteRetained("site/a/state"); had || err != nil {
		t.Fatalf("second DeleteRetained: %v %v", had, err)
	}
	if _, err := s.DeleteRetained("a/+"); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("DeleteRetained of a filter: %v", err)
	}
	sub := connectUser(t, b.addr, packet.V311, "sub", "", true)
	sub.subscribe(1, packet.Subscription{Filter: "site/#", QoS: 1})
	if p := sub.recvPublishAck(); p.Topic != "site/b/state" {
		t.Fatalf("new subscriber got %q", p.Topic)
	}
	b.restart()
	topics := []string{}
	for _, r := range b.srv.RetainedMessages() {
		topics = append(topics, r.Topic)
	}
	if !slices.Equal(topics, []string{"other", "site/b/state"}) {
		t.Fatalf("after delete and restart: %q", topics)
	}
}

// A retained message stored before stored times were kept still loads,
// without one.
func TestRetained_DecodeOldFormat(t *testing.T) {
	m := &session.Message{Topic: "t", Payload: []byte("p"), QoS: 1, Retain: true, From: "c"}
	meta := session.EncodeMeta(m)
	old := binary.AppendUvarint(nil, uint64(len(meta)))
	old = append(append(old, meta...), m.Payload...)
	got, at, err := decodeRetained("t", old)
	if err != nil || at != 0 || string(got.Payload) != "p" || got.From != "c" {
		t.Fatalf("old format: %+v %d %v", got, at, err)
	}
	got, at, err = decodeRetained("t", encodeRetained(m, 42, session.EncodeMeta(m)))
	if err != nil || at != 42 || string(got.Payload) != "p" || got.QoS != 1 {
		t.Fatalf("new format: %+v %d %v", got, at, err)
	}
	for _, bad := range [][]byte{{0}, {0, 1, 0}, {0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}} {
		if _, _, err := decodeRetained("t", bad); err == nil {
			t.Errorf("decodeRetained(% x) accepted", bad)
		}
	}
}

// A retained topic too long for a store key (MQTT allows 64 KiB, bbolt
// keys 32 KiB) fails its own write, answered as such, and the store goes
// on (that it fails alone, not its batch, is boltstore's test).
func TestRetained_TopicTooLongForTheStore(t *testing.T) {
	b := startDurable(t, t.TempDir(), testOptions(), nil)
	c, _ := connectRaw(t, b.addr, &packet.Connect{ClientID: "pub", CleanStart: true})
	long := strings.Repeat("t", 33000)
	if r := c.publishAck(&packet.Publish{Topic: long, QoS: 1, PacketID: 1, Retain: true, Payload: []byte("x")}); r != packet.UnspecifiedError {
		t.Fatalf("PUBACK %v for a topic the store cannot hold, want 0x80", r)
	}
	if r := c.publishAck(&packet.Publish{Topic: "short", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("y")}); r != packet.NoMatchingSubscribers {
		t.Fatalf("PUBACK %v", r)
	}
	b.restart()
	if _, ok := b.srv.RetainedMessage("short"); !ok {
		t.Fatal("the short topic's retained message was not stored")
	}
}
