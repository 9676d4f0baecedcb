package broker

import "errors"

// ErrServerClosed is returned by Serve after Close has been called.
var ErrServerClosed = errors.New("mqtt: server closed")

// ErrNoListener is returned by Healthy when no listener's accept loop is
// running.
var ErrNoListener = errors.New("mqtt: no listener is accepting connections")
