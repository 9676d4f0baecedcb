package broker

// Healthy reports whether the server is serving: it returns
// ErrServerClosed once Close has begun, and ErrNoListener when no
// listener's accept loop is running (each leaves the server's set when its
// ServeListener returns). It takes the server's lock, so a deadlock there
// makes it block, which a watchdog treats as a failure too. It is safe for
// concurrent use.
func (s *Server) Healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrServerClosed
	}
	if len(s.listeners) == 0 {
		return ErrNoListener
	}
	return nil
}
