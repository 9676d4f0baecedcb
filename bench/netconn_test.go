package bench

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestBufConn_PacketsDoNotInterleaveAndCloseFlushes(t *testing.T) {
	cc, sc := tcpPair(t)
	c := newBufConn(cc, 4096)
	const writers, packets = 8, 2000
	// Each "packet" is written in three parts under the lock, as paho's
	// ControlPacket.WriteTo does: a header byte, a body, a trailer.
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte('a' + w)}, 100)
			for range packets {
				c.Lock()
				c.Write([]byte{'<'})
				c.Write(body)
				c.Write([]byte{'>'})
				c.Unlock()
			}
		}()
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(sc)
		got <- b
	}()
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	b := <-got
	if want := writers * packets * 102; len(b) != want {
		t.Fatalf("read %d bytes, want %d", len(b), want)
	}
	for i := 0; i < len(b); i += 102 {
		p := b[i : i+102]
		if p[0] != '<' || p[101] != '>' || bytes.Count(p[1:101], p[1:2]) != 100 {
			t.Fatalf("packet at %d interleaved: %q", i, p)
		}
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Error("write after Close succeeded")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestBufConn_ReadAndFlush(t *testing.T) {
	cc, sc := tcpPair(t)
	c := newBufConn(cc, 16)
	if _, err := sc.Write([]byte("hello, world")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 12)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello, world" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.Write([]byte("ping"))
	c.flush(1e9)
	if _, err := io.ReadFull(sc, buf[:4]); err != nil || string(buf[:4]) != "ping" {
		t.Fatalf("peer read %q, %v", buf[:4], err)
	}
	c.Close()
}
