package broker

import (
	"testing"
	"unsafe"
)

// An idle connection's memory is what a gateway with thousands of
// devices spends most on, and each one allocates a conn: it stays within
// Go's 704-byte size class. Fields added where the struct had padding
// keep it there; two bools at its end once took it to 768.
func TestConn_SizeClass(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 704 {
		t.Fatalf("conn is %d bytes: over the 704-byte size class, each connection allocates 768", n)
	}
}
