package broker

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"gatemq/broker/packet"
)

// TestKeepalive_Timeout checks that a client that sends nothing for one
// and a half times its keepalive (its own, or the Server Keep Alive that
// replaced it) is sent DISCONNECT 0x8D and closed, and that its will is
// published [MQTT-3.1.2-22, MQTT-3.2.2-21].
func TestKeepalive_Timeout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		maxKeepAlive uint16
		ask          uint16
	}{
		{"client keepalive", 0, 1},
		{"server keep alive", 1, 60},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := testOptions()
			o.MaxKeepAlive = tc.maxKeepAlive
			_, addr := newTestBroker(t, o)
			sub := connectV5(t, addr, &paho.Connect{ClientID: "sub", CleanStart: true})
			sub.subscribe("ka/will")
			c := dialRaw(t, addr, packet.V5)
			ack := c.connect(&packet.Connect{ClientID: "idle", CleanStart: true, KeepAlive: tc.ask,
				WillFlag: true, WillTopic: "ka/will", WillPayload: []byte("gone")})
			start := time.Now()
			if ack.Reason != packet.Success {
				t.Fatalf("CONNACK %v", ack.Reason)
			}
			c.expectDisconnect(packet.KeepAliveTimeout)
			if d := time.Since(start); d < 1400*time.Millisecond || d > 2500*time.Millisecond {
				t.Fatalf("closed after %v, want 1.5s", d)
			}
			if p := sub.recv(); string(p.Payload) != "gone" {
				t.Fatalf("got %q, want the will", p.Payload)
			}
		})
	}
}

// TestKeepalive_Traffic checks that a client sending PINGREQ within its
// keepalive stays connected, and a 3.1.1 client that stops is closed
// without DISCONNECT.
func TestKeepalive_Traffic(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	t.Run("pings", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, addr, packet.V5)
		c.connect(&packet.Connect{ClientID: "pinger", CleanStart: true, KeepAlive: 1})
		for range 5 {
			c.send(&packet.Pingreq{})
			if _, ok := c.recv().(*packet.Pingresp); !ok {
				t.Fatal("want PINGRESP")
			}
			c.expectNothing(500 * time.Millisecond)
		}
	})
	t.Run("3.1.1", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, addr, packet.V311)
		c.connect(&packet.Connect{ClientID: "idle311", CleanStart: true, KeepAlive: 1})
		start := time.Now()
		if got := c.expectClosed(); len(got) != 0 {
			t.Fatalf("server sent %v to a 3.1.1 client", got)
		}
		if d := time.Since(start); d < 1400*time.Millisecond || d > 2500*time.Millisecond {
			t.Fatalf("closed after %v, want 1.5s", d)
		}
	})
}

// TestConnect_Timeout checks that a connection whose CONNECT has not
// arrived within ConnectTimeout is closed, whether it sends nothing or
// trickles the packet a byte at a time.
func TestConnect_Timeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	o := testOptions()
	o.ConnectTimeout = timeout
	_, addr := newTestBroker(t, o)
	connect := packet.Append(nil, &packet.Connect{ClientID: "slow", CleanStart: true, KeepAlive: 60,
		Properties: withExpiry(60)}, packet.V5)
	cases := []struct {
		name string
		send []byte // sent a byte every 100 ms
	}{
		{"silent", nil},
		{"trickle", connect},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, addr, packet.V5)
			start := time.Now()
			go func() {
				for _, b := range tc.send {
					time.Sleep(100 * time.Millisecond)
					if _, err := c.nc.Write([]byte{b}); err != nil {
						return
					}
				}
			}()
			if got := c.expectClosed(); len(got) != 0 {
				t.Fatalf("server sent %v before CONNECT", got)
			}
			if d := time.Since(start); d < timeout-50*time.Millisecond || d > timeout+time.Second {
				t.Fatalf("closed after %v, want %v", d, timeout)
			}
		})
	}
}

// TestKeepalive_PartialPacket checks that the keepalive counts whole
// control packets: a client that trickles the bytes of one packet more
// slowly than that is closed all the same [MQTT-3.1.2-22].
func TestKeepalive_PartialPacket(t *testing.T) {
	t.Parallel()
	_, addr := newTestBroker(t, testOptions())
	c := dialRaw(t, addr, packet.V5)
	c.connect(&packet.Connect{ClientID: "trickle", CleanStart: true, KeepAlive: 1})
	start := time.Now()
	b := packet.Append(nil, &packet.Publish{Topic: "t", Payload: make([]byte, 50)}, packet.V5)
	go func() {
		for _, x := range b {
			time.Sleep(200 * time.Millisecond)
			if _, err := c.nc.Write([]byte{x}); err != nil {
				return
			}
		}
	}()
	c.expectDisconnect(packet.KeepAliveTimeout)
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("closed after %v, want 1.5s", d)
	}
}
