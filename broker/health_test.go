package broker

import (
	"context"
	"errors"
	"gatemq/internal/testkit"
	"net"
	"testing"
	"time"
)

func TestServer_Healthy(t *testing.T) {
	s := New(testOptions())
	if err := s.Healthy(); !errors.Is(err, ErrNoListener) {
		t.Fatalf("before Serve: Healthy() = %v, want ErrNoListener", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	testkit.WaitFor(t, 5*time.Second, s.Healthy)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-errc
	if err := s.Healthy(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("after Close: Healthy() = %v, want ErrServerClosed", err)
	}
}
