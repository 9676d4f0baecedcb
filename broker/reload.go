package broker

import (
	"net"
	"time"

	"gatemq/session"
)

// Limits are the options a running server can change with SetLimits (on
// SIGHUP). Each field means what the Options field of the same name
// means, with the same defaults.
//
// A connection takes the limits in force when it is accepted and keeps
// them for its life, as MQTT wants: a v5 client was told Maximum Packet
// Size, Receive Maximum and Server Keep Alive in its CONNACK, and may
// rely on them until it reconnects. The exceptions are the caps of the
// session queues (MaxQueued, MaxQueuedBytes, QueueQoS0, AwaitRelTimeout),
// which apply to every session at its next delivery, the connection caps
// (MaxConnections, and the listeners' SetListenerLimits), which apply to
// the next accept, and SysInterval, which restarts the $SYS ticker.
type Limits struct {
	MaxPacketSize     int
	MaxKeepAlive      uint16
	MaxInflight       int
	MaxQueued         int
	MaxQueuedBytes    int
	QueueQoS0         bool
	MaxConnections    int
	MaxTopicLevels    int
	MaxSubscriptions  int
	MaxUserProperties int
	AwaitRelTimeout   time.Duration
	SysInterval       time.Duration
}

// limits returns the live part of o.
func (o *Options) limits() Limits {
	return Limits{
		MaxPacketSize:     o.MaxPacketSize,
		MaxKeepAlive:      o.MaxKeepAlive,
		MaxInflight:       o.MaxInflight,
		MaxQueued:         o.MaxQueued,
		MaxQueuedBytes:    o.MaxQueuedBytes,
		QueueQoS0:         o.QueueQoS0,
		MaxConnections:    o.MaxConnections,
		MaxTopicLevels:    o.MaxTopicLevels,
		MaxSubscriptions:  o.MaxSubscriptions,
		MaxUserProperties: o.MaxUserProperties,
		AwaitRelTimeout:   o.AwaitRelTimeout,
		SysInterval:       o.SysInterval,
	}
}

// SetLimits sets the fields of o that l has, for New.
func (o *Options) SetLimits(l Limits) {
	o.MaxPacketSize = l.MaxPacketSize
	o.MaxKeepAlive = l.MaxKeepAlive
	o.MaxInflight = l.MaxInflight
	o.MaxQueued = l.MaxQueued
	o.MaxQueuedBytes = l.MaxQueuedBytes
	o.QueueQoS0 = l.QueueQoS0
	o.MaxConnections = l.MaxConnections
	o.MaxTopicLevels = l.MaxTopicLevels
	o.MaxSubscriptions = l.MaxSubscriptions
	o.MaxUserProperties = l.MaxUserProperties
	o.AwaitRelTimeout = l.AwaitRelTimeout
	o.SysInterval = l.SysInterval
}

// withDefaults applies Options' defaults to l.
func (l Limits) withDefaults() Limits {
	var o Options
	o.SetLimits(l)
	o = o.withDefaults()
	return o.limits()
}

// sessionOptions returns the session options of l; relExpired counts the
// inbound QoS 2 exchanges the sessions drop.
func (l *Limits) sessionOptions(relExpired func(int)) session.Options {
	return session.Options{
		MaxInflight:    l.MaxInflight,
		MaxQueued:      l.MaxQueued,
		MaxQueuedBytes: l.MaxQueuedBytes,
		QueueQoS0:      l.QueueQoS0,

		AwaitRelTimeout: l.AwaitRelTimeout,
		RelExpired:      relExpired,
	}
}

// limits returns the limits in force. The value must not be changed.
func (s *Server) limits() *Limits { return s.lim.Load() }

// Limits returns the limits in force.
func (s *Server) Limits() Limits { return *s.limits() }

// SetLimits replaces the limits of a running server; see Limits for what
// they apply to. It is safe for concurrent use and does not block on
// connections. It returns the limits applied, with their defaults.
// MaxInflight also caps the QoS 2 messages a connection's client may
// have waiting for PUBREL (its Receive Maximum), and QueueQoS0 decides
// from the next message whether QoS 0 messages are stored for durable
// sessions.
func (s *Server) SetLimits(l Limits) Limits {
	l = l.withDefaults()
	old := s.lim.Swap(&l)
	s.sessions.SetOptions(l.sessionOptions(s.countRelExpired))
	if l.SysInterval != old.SysInterval {
		select {
		case s.sysReset <- struct{}{}:
		default: // a reset is pending; it reads the new interval
		}
	}
	return l
}

// countRelExpired counts inbound QoS 2 exchanges dropped after
// AwaitRelTimeout; sessions call it with their lock held.
func (s *Server) countRelExpired(n int) { s.stats.relExpired.Add(uint64(n)) }

// listenerLimits are a listener's connection caps; see SetListenerLimits.
type listenerLimits struct {
	maxConns int
	rate     *rateLimiter // nil without a rate cap
}

func newListenerLimits(maxConns, rate int) *listenerLimits {
	return &listenerLimits{maxConns: maxConns, rate: newRateLimiter(rate)}
}

// SetListenerLimits changes the MaxConnections and MaxConnectionRate of
// the listener served by ServeListener(ln, ...), from its next accept on;
// connections over a lowered cap stay. A changed rate starts with full
// buckets. It reports whether ln is being served.
func (s *Server) SetListenerLimits(ln net.Listener, maxConns, maxRate int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		if l.orig != ln {
			continue
		}
		old := l.limits.Load()
		nl := &listenerLimits{maxConns: maxConns, rate: old.rate}
		if old.rate == nil || int(old.rate.rate) != maxRate {
			nl.rate = newRateLimiter(maxRate)
		}
		l.limits.Store(nl)
		return true
	}
	return false
}
