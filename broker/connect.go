package broker

import (
	"errors"
	"fmt"
	"time"

	"gatemq/boltstore"
	"gatemq/broker/packet"
	"gatemq/session"
)

// handshake reads CONNECT within the connect timeout, opens or resumes the
// session, starts the writer and sends CONNACK.
func (c *conn) handshake() error {
	// One deadline for the whole CONNECT, not one per read: a client
	// trickling its bytes must not hold the connection open.
	c.nc.SetReadDeadline(c.connectBy)
	h, err := c.readHeader()
	if err != nil {
		return err
	}
	if h.Type != packet.CONNECT {
		// [MQTT-3.1.0-1]: close without a CONNACK.
		return fmt.Errorf("first packet %s: %w", h.Type, packet.ProtocolError)
	}
	pk, err := c.readBody(h)
	cp, _ := pk.(*packet.Connect)
	if err != nil {
		if cp != nil && (cp.Version == packet.V5 || errors.Is(err, packet.UnsupportedProtocolVersion)) {
			var reason packet.Reason
			errors.As(err, &reason)
			c.refuse(cp.Version, reason)
		}
		return err
	}
	c.version = cp.Version

	// The connection is not yet connected: refusals below answer with a
	// CONNACK and close, and no DISCONNECT is sent.
	if reason := c.checkConnect(cp); reason != packet.Success {
		c.refuse(cp.Version, reason)
		return fmt.Errorf("connect refused: %w", reason)
	}
	ack := &packet.Connack{}
	c.clientID = cp.ClientID
	if c.clientID == "" {
		c.clientID = newClientID()
		ack.Properties.AssignedClientID = c.clientID
		ack.Properties.Present.Add(packet.PropAssignedClientID)
	}
	if reason := c.authenticate(cp); reason != packet.Success {
		c.refuse(cp.Version, reason)
		return fmt.Errorf("connect refused: %w", reason)
	}
	props := &cp.Properties
	recvMax := 65535
	if props.Present.Has(packet.PropReceiveMaximum) {
		recvMax = int(props.ReceiveMaximum)
	}
	if props.Present.Has(packet.PropMaximumPacketSize) {
		c.maxOut = int(props.MaximumPacketSize)
	}
	c.aliasMaxOut = min(props.TopicAliasMaximum, c.srv.opts.TopicAliasMax) // each alias holds a topic
	if props.Present.Has(packet.PropRequestProblemInfo) {
		c.problemInfo = props.RequestProblemInfo == 1
	}

	// Keepalive [MQTT-3.1.2-22], capped by the server (v5: Server Keep
	// Alive [MQTT-3.2.2-21]).
	ka := cp.KeepAlive
	if max := c.lim.MaxKeepAlive; c.version == packet.V5 && (ka > max || (ka == 0 && max < 65535)) {
		ka = max
		ack.Properties.ServerKeepAlive = ka
		ack.Properties.Present.Add(packet.PropServerKeepAlive)
	}
	c.keepAlive = ka

	// Session expiry: v5 says it in CONNECT; a 3.x client with clean
	// session 0 gets the configured expiry.
	var expiry uint32
	if c.version == packet.V5 {
		expiry = props.SessionExpiry
	} else if !cp.CleanStart {
		expiry = uint32(min(c.srv.opts.SessionExpiry/time.Second, 0xFFFFFFFE))
	}
	c.connectExpiry = expiry

	if cp.WillFlag {
		c.will = newWill(cp, c.clientID)
		c.will.auth, c.will.username = c.ln.opts.Auth, c.username
	}

	// Take the client ID over from a live connection, then open or resume
	// the session. The CONNACK is queued before the session is attached
	// so that it goes out before any resent message.
	present := c.srv.openSession(c, cp.CleanStart, expiry, recvMax, func(present bool) {
		ack.SessionPresent = present
		c.fillConnack(ack, cp)
		// Connected before Attach: a takeover as soon as the session is
		// attached must send DISCONNECT after this CONNACK, not just close.
		c.connected.Store(true)
		c.send(ack)
	})

	if ka > 0 {
		c.rd.timeout = keepAliveWindow(ka)
	} else {
		c.rd.timeout = 0
		c.nc.SetReadDeadline(time.Time{})
	}
	c.srv.log.Debug("client connected", logClientID, c.clientID, logRemote, c.remote,
		logVersion, c.version.String(), logKeepAlive, ka, logCleanStart, cp.CleanStart, logPresent, present)
	c.srv.status.connected(c, cp.CleanStart)
	return nil
}

// checkConnect validates what CONNECT asks for against what the server
// allows, returning the CONNACK reason for a refusal.
func (c *conn) checkConnect(cp *packet.Connect) packet.Reason {
	o := &c.srv.opts
	if cp.ClientID == "" {
		// 3.1 needs 1 to 23 characters; 3.1.1 allows an empty ID only
		// with clean session 1 [MQTT-3.1.3-8].
		if cp.Version == packet.V31 || (cp.Version == packet.V311 && !cp.CleanStart) {
			return packet.ClientIdentifierNotValid
		}
	}
	if len(cp.ClientID) > o.MaxClientIDLen {
		return packet.ClientIdentifierNotValid // [MQTT-3.1.3-5] allows a limit
	}
	if cp.Version != packet.V5 && cp.KeepAlive > c.lim.MaxKeepAlive {
		// 3.x has no way to tell the client another keepalive, so it is
		// refused as Mosquitto does.
		return packet.ClientIdentifierNotValid
	}
	if cp.Properties.Present.Has(packet.PropAuthMethod) {
		return packet.BadAuthenticationMethod // no enhanced authentication [MQTT-4.12.0-1]
	}
	if cp.WillFlag {
		if cp.WillQoS > o.MaxQoS {
			return packet.QoSNotSupported // [MQTT-3.2.2-12]
		}
		if cp.WillRetain && o.DisableRetain {
			return packet.RetainNotSupported // [MQTT-3.2.2-13]
		}
	}
	if c.srv.isClosing() {
		return packet.ServerUnavailable
	}
	return packet.Success
}

// refuse answers CONNECT with a failure and lets the writer-less
// connection close: the CONNACK is written directly, as nothing else
// writes yet.
func (c *conn) refuse(v packet.Version, reason packet.Reason) {
	if v < packet.V31 || v > packet.V5 {
		v = packet.V311 // unknown level: answer in 3.1.1 [MQTT-3.1.2-2]
	}
	ack := &packet.Connack{Reason: reason}
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.nc.Write(packet.Append(nil, ack, v)); err == nil {
		c.srv.stats.packetsSent.Add(1)
	}
	c.setWhy(closeProtocol)
}

// fillConnack sets the v5 CONNACK properties that announce the server's
// limits.
func (c *conn) fillConnack(ack *packet.Connack, cp *packet.Connect) {
	if c.version != packet.V5 {
		return
	}
	o, lim := &c.srv.opts, c.lim
	p := &ack.Properties
	if lim.MaxInflight < 65535 {
		p.ReceiveMaximum = uint16(lim.MaxInflight)
		p.Present.Add(packet.PropReceiveMaximum)
	}
	if o.MaxQoS < 2 {
		p.MaximumQoS = o.MaxQoS
		p.Present.Add(packet.PropMaximumQoS)
	}
	if o.DisableRetain {
		p.RetainAvailable = 0
		p.Present.Add(packet.PropRetainAvailable)
	}
	if lim.MaxPacketSize < 268435460 {
		p.MaximumPacketSize = uint32(lim.MaxPacketSize)
		p.Present.Add(packet.PropMaximumPacketSize)
	}
	if o.TopicAliasMax > 0 {
		p.TopicAliasMaximum = o.TopicAliasMax
		p.Present.Add(packet.PropTopicAliasMaximum)
	}
	if cp.Properties.RequestResponseInfo == 1 {
		p.ResponseInfo = "response/" + c.clientID
		p.Present.Add(packet.PropResponseInfo)
	}
}

// openSession takes the client ID over from a live connection if there is
// one, opens or resumes the session and attaches c to it. queueAck is
// called with the session-present flag once the session is known and
// before c is attached. It returns the session-present flag.
func (s *Server) openSession(c *conn, clean bool, expiry uint32, recvMax int, queueAck func(bool)) bool {
	for {
		s.connectMu.Lock()
		if old := s.sessions.Get(c.clientID); old != nil {
			if oc, ok := old.Owner().(*conn); ok && oc != nil && oc != c {
				s.connectMu.Unlock()
				s.log.Debug("session taken over", logClientID, c.clientID, logRemote, oc.remote)
				oc.disconnect(closeTakenOver, packet.SessionTakenOver) // [MQTT-3.1.4-3]
				select {
				case <-oc.cleaned:
				case <-time.After(5 * time.Second):
					oc.closeSocket()
					<-oc.cleaned
				}
				continue
			}
		}
		break
	}
	sess, present, replaced := s.sessions.Open(c.clientID, clean)
	// The store's writes below are only queued while connectMu is held;
	// the wait for their commit happens after it is released, so durable
	// clients connecting together share commits.
	var sync []func() error
	if replaced != nil {
		s.endSessionLocked(replaced)
		if s.opts.Store != nil && replaced.IsDurable() {
			// The ended session must be gone from the store before
			// CONNACK: after it the client may reuse its packet IDs, and
			// a crash must not bring the old session back.
			sync = append(sync, s.opts.Store.Sync)
		}
	}
	s.stopExpiry(sess)
	// A delayed will waits for the session: a new connection to it
	// cancels the will [MQTT-3.1.3-9]; a clean start ended it, so the
	// will goes now.
	s.takeWill(c.clientID, clean)
	sess.SetExpiry(expiry)
	if s.opts.Store != nil && expiry > 0 && !c.ln.opts.NoDurableSessions {
		if len(c.clientID) <= boltstore.MaxClientIDLen {
			s.makeDurable(sess)
		} else if !sess.IsDurable() {
			s.log.Warn("client ID too long for a durable session: its session is kept in memory",
				logClientID, c.clientID[:64]+"...", "length", len(c.clientID))
		}
	}
	c.sess = sess
	// Taken by c from here: a takeover in the meantime sees its owner.
	sess.Reserve(c)
	if sess.IsDurable() {
		// CONNACK says the session exists: it must survive a crash
		// from then on.
		errc := make(chan error, 1)
		s.saveSession(sess, func(err error) { errc <- err }) // expiry, last seen, online
		s.saveWill(sess, c.will, time.Time{})                // or clears a stale one
		sync = append(sync, func() error { return <-errc })
	}
	if len(sync) == 0 {
		queueAck(present)
		sess.Attach(c, recvMax, c.signal)
		s.connectMu.Unlock()
		return present
	}
	// A connection taking over meanwhile closes this one without
	// CONNACK: it is not connected yet.
	s.connectMu.Unlock()
	for _, wait := range sync {
		if err := wait(); err != nil {
			s.log.Error("persist session before CONNACK", logClientID, c.clientID, logErr, err)
		}
	}
	queueAck(present)
	sess.Attach(c, recvMax, c.signal)
	return present
}

// connClosed handles a connection whose socket is closed: its will and its
// session's expiry. It runs on the connection's reader goroutine.
func (s *Server) connClosed(c *conn, why closeReason) {
	durable := s.opts.Store != nil && c.sess.IsDurable()
	if s.isClosing() {
		if c.sess.Detach(c) && durable {
			s.saveSession(c.sess, nil) // its read position and last-seen time
		}
		return
	}
	s.connectMu.Lock()
	defer s.connectMu.Unlock()
	if !c.sess.Detach(c) {
		return
	}
	if durable && c.sess.Expiry() != 0 {
		s.saveSession(c.sess, nil)
	}
	if c.will != nil && why != closeNormal && why != closeShutdown {
		s.scheduleWill(c.will, c.sess)
	} else if c.will != nil && why == closeNormal {
		s.saveWill(c.sess, nil, time.Time{}) // discarded [MQTT-3.14.4-3]
	}
	if c.sess.Expiry() == 0 {
		s.endSessionLocked(c.sess)
		return
	}
	s.startExpiry(c.sess)
}

// endSessionLocked ends a session: it leaves the registry and the topic
// tree, and a will still waiting for it is published [MQTT-3.1.3-9].
// connectMu must be held.
func (s *Server) endSessionLocked(sess *session.Session) {
	s.sessions.Remove(sess)
	if s.opts.Store != nil && sess.IsDurable() {
		s.opts.Store.DeleteSession(sess.ClientID, nil)
		// Its incoming QoS 2 state ends with it: a new session under the
		// same client ID must not find these packet IDs after a restart.
		for _, id := range sess.InboundIDs() {
			s.opts.Store.Forget(onceKey(sess.ClientID, id), nil)
		}
	}
	for _, sub := range sess.Subscriptions() {
		s.topics.unsubscribe(sess, sub.Filter)
	}
	s.stopExpiry(sess)
	s.mu.Lock()
	pw := s.wills[sess.ClientID]
	if pw != nil && pw.sess == sess {
		delete(s.wills, sess.ClientID)
		pw.timer.Stop()
	} else {
		pw = nil
	}
	s.mu.Unlock()
	if pw != nil {
		s.publishWill(pw.w)
	}
}

// expiryTimer is an offline session's expiry timer. The callback compares
// its own *expiryTimer with the one registered, so a timer that fired
// while the session was being resumed cannot end a later offline period.
type expiryTimer struct{ t *time.Timer }

func (s *Server) startExpiry(sess *session.Session) {
	s.startExpiryIn(sess, time.Duration(sess.Expiry())*time.Second)
}

// startExpiryIn ends sess after d unless a connection takes it first; a
// session with expiry 0xFFFFFFFF never expires.
func (s *Server) startExpiryIn(sess *session.Session, d time.Duration) {
	if sess.Expiry() == 0xFFFFFFFF {
		return // never expires
	}
	e := &expiryTimer{}
	s.mu.Lock()
	defer s.mu.Unlock()
	e.t = time.AfterFunc(d, func() {
		s.connectMu.Lock()
		defer s.connectMu.Unlock()
		s.mu.Lock()
		current := s.expiries[sess] == e
		s.mu.Unlock()
		if current && sess.Owner() == nil {
			s.log.Debug("session expired", logClientID, sess.ClientID)
			s.endSessionLocked(sess)
		}
	})
	s.expiries[sess] = e
}

func (s *Server) stopExpiry(sess *session.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.expiries[sess]; e != nil {
		e.t.Stop()
		delete(s.expiries, sess)
	}
}
