package broker

import (
	"fmt"
	"testing"
	"time"

	"gatemq/broker/packet"
	"gatemq/internal/testkit"
)

func TestAdminAPI_ClientsSessionsRetainedKick(t *testing.T) {
	s, addr := newTestBroker(t, testOptions())
	c, _ := connectRaw(t, addr, &packet.Connect{ClientID: "dev-1", KeepAlive: 30, Properties: withExpiry(3600)})
	c.subscribe(1, packet.Subscription{Filter: "a/#", QoS: 1})
	old := dialRaw(t, addr, packet.V311)
	old.mustConnect("dev-2", false)
	old.send(&packet.Publish{Topic: "r/1", Payload: []byte("hello"), Retain: true})

	testkit.WaitFor(t, 2*time.Second, func() error {
		if len(s.RetainedMessages()) != 1 {
			return fmt.Errorf("retained %v", s.RetainedMessages())
		}
		return nil
	})
	cl, err := s.ClientStatuses(StatusOnline)
	if err != nil || len(cl) != 2 || cl[0].ClientID != "dev-1" || cl[0].Protocol != 5 || cl[0].KeepAlive != 30 ||
		cl[0].OnlineAt.IsZero() || cl[1].Protocol != 4 || cl[1].Remote == "" {
		t.Fatalf("ClientStatuses(online) = %+v %v", cl, err)
	}
	if r := s.RetainedMessages()[0]; r.Topic != "r/1" || r.Bytes != 5 || r.From != "dev-2" {
		t.Fatalf("retained %+v", r)
	}
	info, subs, ok := s.Session("dev-1")
	if !ok || !info.Online || info.ExpirySeconds != 3600 || len(subs) != 1 || subs[0].Filter != "a/#" || subs[0].QoS != 1 {
		t.Fatalf("Session(dev-1) = %+v %+v %v", info, subs, ok)
	}

	if !s.Kick("dev-1", 2*time.Second) {
		t.Fatal("Kick(dev-1) = false")
	}
	c.expectDisconnect(packet.AdministrativeAction)
	if s.Kick("nobody", time.Second) {
		t.Fatal("Kick(nobody) = true")
	}
	testkit.WaitFor(t, 2*time.Second, func() error {
		if on, off := s.SessionCounts(); on != 1 || off != 1 {
			return fmt.Errorf("online %d offline %d", on, off)
		}
		return nil
	})
	ss := s.Sessions()
	if len(ss) != 2 || ss[0].ClientID != "dev-1" || ss[0].Online || !ss[1].Online {
		t.Fatalf("Sessions() = %+v", ss)
	}
}
