package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatemq/broker/packet"
)

// pipeListener is a net.Listener whose connections are net.Pipe pairs:
// an in-process broker without sockets, for fuzzing.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial returns the client end of a new connection.
func (l *pipeListener) dial() (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// errorLog is a slog.Handler that keeps the first Error record, such as
// the one a connection's recovered panic logs.
type errorLog struct {
	mu    sync.Mutex
	first string
}

func (h *errorLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *errorLog) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *errorLog) WithGroup(string) slog.Handler                { return h }
func (h *errorLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.first == "" {
		h.first = r.Message
		r.Attrs(func(a slog.Attr) bool {
			h.first += " " + a.String()
			return true
		})
	}
	return nil
}

func (h *errorLog) get() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.first
}

var fuzzVersions = []packet.Version{packet.V31, packet.V311, packet.V5}

// FuzzServer_Input feeds arbitrary bytes after a valid CONNECT to an
// in-process broker over net.Pipe. Whatever the bytes, the broker must
// not panic (a recovered panic is logged at Error), must close or keep
// the connection without hanging, and must go on serving: after each
// input a probe client connects and gets its PINGRESP.
func FuzzServer_Input(f *testing.F) {
	for vi, v := range fuzzVersions {
		add := func(pks ...packet.Packet) {
			var b []byte
			for _, pk := range pks {
				b = packet.Append(b, pk, v)
			}
			f.Add(byte(vi), b)
		}
		add(&packet.Pingreq{})
		add(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a/#", QoS: 2}, {Filter: "$share/g/+", QoS: 1}}},
			&packet.Publish{Topic: "a/b", QoS: 2, PacketID: 2, Retain: true, Payload: []byte("x")},
			&packet.Pubrel{PacketID: 2}, &packet.Unsubscribe{PacketID: 3, Filters: []string{"a/#"}})
		add(&packet.Publish{Topic: "a", QoS: 1, PacketID: 1, Payload: []byte("x")}, &packet.Puback{PacketID: 1},
			&packet.Pubrec{PacketID: 9}, &packet.Pubcomp{PacketID: 9}, &packet.Disconnect{})
		if v == packet.V5 {
			p := &packet.Publish{Topic: "alias/t", QoS: 1, PacketID: 4, Payload: []byte("y")}
			p.Properties.TopicAlias = 3
			p.Properties.Present.Add(packet.PropTopicAlias)
			q := *p
			q.Topic, q.PacketID = "", 5
			add(p, &q, &packet.Auth{}, &packet.Disconnect{Reason: packet.DisconnectWithWill})
		}
		for _, tc := range malformedAfterConnect(max(v, packet.V311)) {
			f.Add(byte(vi), tc.raw)
		}
	}

	logs := &errorLog{}
	o := testOptions()
	o.Logger = slog.New(logs)
	o.MaxPacketSize = 64 << 10
	o.TopicAliasMax = 10
	s := New(o)
	ln := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
		<-served
	})

	var seq atomic.Uint64
	f.Fuzz(func(t *testing.T, vb byte, input []byte) {
		v := fuzzVersions[int(vb)%len(fuzzVersions)]
		id := fmt.Sprintf("fuzz-%d", seq.Add(1))
		nc, err := ln.dial()
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, nc)
			close(drained)
		}()
		cp := &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
		if v == packet.V31 {
			cp.ProtocolName = "MQIsdp"
		}
		nc.Write(packet.Append(nil, cp, v))
		nc.Write(input) // fails once the broker has closed the connection: fine
		nc.Close()
		<-drained

		probe, err := ln.dial()
		if err != nil {
			t.Fatal(err)
		}
		defer probe.Close()
		probe.SetDeadline(time.Now().Add(10 * time.Second))
		probe.Write(packet.Append(nil, &packet.Connect{ClientID: "probe", CleanStart: true, KeepAlive: 30}, packet.V311))
		probe.Write(packet.Append(nil, &packet.Pingreq{}, packet.V311))
		for _, want := range []packet.Type{packet.CONNACK, packet.PINGRESP} {
			pk, err := packet.Read(probe, packet.V311, 0)
			if err != nil || pk.Type() != want {
				t.Fatalf("probe after the input: got %v, %v; want %s", pk, err, want)
			}
		}
		if e := logs.get(); e != "" {
			t.Fatalf("broker logged an error: %s", e)
		}
	})
}
