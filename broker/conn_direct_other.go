//go:build !unix

package broker

import "net"

// newDirectWriter returns nil: acknowledgements go through the writer
// goroutine on systems without Unix sockets' write(2).
func newDirectWriter(net.Conn) *directWriter { return nil }

// hasDirectWriter reports false: see newDirectWriter.
func hasDirectWriter(net.Conn) bool { return false }
