package broker

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatemq/broker/packet"
)

// Limits beyond the protocol's, against hostile and broken clients. The
// Options and ListenerOptions fields that set them say what each refuses
// with; every refusal or drop is counted in Stats.Limits.
//
// The packet size (Options.MaxPacketSize) is checked from the fixed
// header in readHeader, before anything is allocated for the body and, for
// CONNECT, before authentication; a body within it is allocated as its
// bytes arrive (reader.readBody).

// Defaults of the limits that have one.
const (
	defaultMaxTopicLevels    = 128
	defaultMaxUserProperties = 128
	defaultAwaitRelTimeout   = 300 * time.Second
	defaultMaxSubscriptions  = 1000
)

// rateTableSize caps the addresses a listener's connection rate limiter
// tracks. An address leaves the table once its bucket has refilled, and
// when the table is full anyway one is evicted at random: an address
// forgotten early only gets a fresh bucket, so a flood from many
// addresses can cost memory or precision, never deny an honest client.
const rateTableSize = 4096

// topicLevels returns the number of levels of a topic name or filter:
// "a/b" has two, "/" two, "" one.
func topicLevels(topic string) int { return strings.Count(topic, "/") + 1 }

// checkConnectLimits applies the limits to a decoded CONNECT, before the
// session is touched: a will topic over MaxTopicLevels fails with Topic
// Name invalid, which answers a v5 client with CONNACK 0x90 and closes a
// 3.x one, as for a will topic with a wildcard.
func (c *conn) checkConnectLimits(cp *packet.Connect) error {
	if !cp.WillFlag {
		return nil
	}
	if n, max := topicLevels(cp.WillTopic), c.lim.MaxTopicLevels; n > max {
		c.srv.stats.topicTooDeep.Add(1)
		return fmt.Errorf("will topic of %d levels over the limit of %d: %w", n, max, packet.TopicNameInvalid)
	}
	return nil
}

// checkPublishLimits applies the limits to a PUBLISH before it is
// handled: a topic over MaxTopicLevels ends the connection, with
// DISCONNECT 0x90 (Topic Name invalid) in v5. A PUBLISH naming its topic
// by alias alone passes: the alias was set by a PUBLISH that passed.
func (c *conn) checkPublishLimits(p *packet.Publish) error {
	if n, max := topicLevels(p.Topic), c.lim.MaxTopicLevels; n > max {
		c.srv.stats.topicTooDeep.Add(1)
		return fmt.Errorf("PUBLISH topic of %d levels over the limit of %d: %w", n, max, packet.TopicNameInvalid)
	}
	return nil
}

// checkSubscribeLimits returns the SUBACK reason for a valid filter that
// the limits refuse, or Success: Topic Filter invalid (0x8F) for one over
// MaxTopicLevels, not counting a $share/{group}/ prefix, and Quota
// exceeded (0x97) for a new subscription beyond MaxSubscriptions. 3.x
// clients get 0x80 for either. It runs on the reader, which alone changes
// the session's subscriptions.
func (c *conn) checkSubscribeLimits(filter string) packet.Reason {
	o := c.lim
	if _, f, _ := splitShared(filter); topicLevels(f) > o.MaxTopicLevels {
		c.srv.stats.topicTooDeep.Add(1)
		return packet.TopicFilterInvalid
	}
	if !c.sess.CanSubscribe(filter, o.MaxSubscriptions) {
		c.srv.stats.subsOverQuota.Add(1)
		return packet.QuotaExceeded
	}
	return packet.Success
}

// decodeOptions returns the decoder limits of the connection.
func (c *conn) decodeOptions() packet.DecodeOptions {
	return packet.DecodeOptions{MaxUserProperties: c.lim.MaxUserProperties}
}

// rateLimiter limits the new connections from each source address to a
// rate per second, with a token bucket per address holding up to one
// second's worth: a client may open rate connections at once, then rate
// a second. IPv6 addresses count by /64, the block one host usually
// gets. It is safe for concurrent use.
type rateLimiter struct {
	rate float64 // tokens per second, and the bucket size

	// mu guards buckets and swept; it is a leaf lock.
	mu      sync.Mutex
	buckets map[netip.Addr]bucket
	swept   int64 // unix ns of the last sweep of refilled buckets
}

// bucket is one address's tokens as of at (unix ns).
type bucket struct {
	tokens float64
	at     int64
}

// newRateLimiter returns a limiter of perSecond new connections per
// address, or nil (no limit) for perSecond <= 0.
func newRateLimiter(perSecond int) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &rateLimiter{rate: float64(perSecond), buckets: make(map[netip.Addr]bucket)}
}

// allow takes a token for a connection from addr at now (unix ns) and
// reports whether there was one. A nil limiter, and an address that is
// not TCP/IP (net.Pipe, a Unix socket), always pass.
func (l *rateLimiter) allow(addr net.Addr, now int64) bool {
	if l == nil {
		return true
	}
	key, ok := sourceKey(addr)
	if !ok {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if ok {
		b.tokens = l.refill(b, now)
	} else {
		if len(l.buckets) >= rateTableSize {
			l.evictLocked(now)
		}
		b.tokens = l.rate
	}
	b.at = now
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	l.buckets[key] = b
	return allowed
}

// refill returns b's tokens at now.
func (l *rateLimiter) refill(b bucket, now int64) float64 {
	return min(l.rate, b.tokens+float64(now-b.at)*l.rate/float64(time.Second))
}

// evictLocked makes room in a full table: at most once a second it drops
// every bucket that has refilled (as good as absent), and if that frees
// nothing it drops one bucket at random.
func (l *rateLimiter) evictLocked(now int64) {
	if now-l.swept >= int64(time.Second) {
		l.swept = now
		for k, b := range l.buckets {
			if l.refill(b, now) >= l.rate {
				delete(l.buckets, k)
			}
		}
	}
	if len(l.buckets) < rateTableSize {
		return
	}
	for k := range l.buckets { // map order is random
		delete(l.buckets, k)
		return
	}
}

// len returns the number of addresses tracked.
func (l *rateLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// sourceKey returns the rate limiter's key for a remote address: the IPv4
// address, or the /64 of an IPv6 one.
func sourceKey(a net.Addr) (netip.Addr, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, false
	}
	if ip = ip.Unmap(); ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip, true
}

// sampledLog lets through one log line a second of a kind that a flood
// would otherwise repeat thousands of times a second (refused
// connections), and counts the ones it holds back. The counters in Stats
// see every event. It is safe for concurrent use.
type sampledLog struct {
	last       atomic.Int64 // unix ns of the last line let through
	suppressed atomic.Uint64
}

// allow reports whether to log now, and how many lines were held back
// since the last one let through.
func (l *sampledLog) allow(now int64) (ok bool, suppressed uint64) {
	last := l.last.Load()
	if now-last < int64(time.Second) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// refuseConn closes a connection admit turned away and counts it in
// counter. It logs at most one line a second per listener: a flood of
// refused connections must not become a flood of log writes to flash.
func (s *Server) refuseConn(ln *listener, nc net.Conn, counter *atomic.Uint64, msg string, args ...any) {
	counter.Add(1) // before the close, so whoever sees it closed sees it counted
	nc.Close()
	if ok, n := ln.refusals.allow(time.Now().UnixNano()); ok {
		args = append(args, logRemote, nc.RemoteAddr().String(), logListener, ln.Addr().String(), "suppressed", n)
		s.log.Warn(msg, args...)
	}
}

// countConnectTimeout counts a read error before CONNECT that is the
// connect timeout.
func (c *conn) countConnectTimeout(err error) {
	var ne net.Error
	if !c.connected.Load() && errors.As(err, &ne) && ne.Timeout() {
		c.srv.stats.connectTimeouts.Add(1)
	}
}

// countDecodeErr counts a decode error that is a limit's refusal.
func (c *conn) countDecodeErr(err error) {
	if errors.Is(err, packet.QuotaExceeded) {
		c.srv.stats.userPropsOver.Add(1)
	}
}
