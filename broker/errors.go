package broker

import "errors"

// ErrServerClosed is returned by Serve after Close has been called.
var ErrServerClosed = errors.New("mqtt: server closed")
