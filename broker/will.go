package broker

import (
	"strings"
	"time"

	"gatemq/broker/packet"
	"gatemq/session"
)

// will is a client's Will Message as given in CONNECT.
type will struct {
	msg    session.Message
	delay  uint32 // Will Delay Interval, seconds
	expiry uint32 // Message Expiry Interval, seconds, if hasExp
	hasExp bool

	// The client's listener policy and user name: the publish ACL
	// applies when the will goes out, after any reload.
	auth     *Auth
	username string
}

// pendingWill is a will waiting for its delay or for its session to end.
type pendingWill struct {
	w     *will
	sess  *session.Session
	timer *time.Timer
}

// forwardProps are the PUBLISH properties passed on to subscribers
// unchanged (v5 3.3.2.3).
const forwardProps = 1<<packet.PropPayloadFormat | 1<<packet.PropContentType |
	1<<packet.PropResponseTopic | 1<<packet.PropCorrelationData

func newWill(cp *packet.Connect, clientID string) *will {
	w := &will{
		msg: session.Message{
			Topic:   cp.WillTopic,
			Payload: cp.WillPayload,
			QoS:     cp.WillQoS,
			Retain:  cp.WillRetain,
			From:    clientID,
		},
		delay: cp.WillProperties.WillDelay,
	}
	wp := &cp.WillProperties
	w.msg.Props = &packet.Properties{
		Present:         wp.Present & forwardProps,
		PayloadFormat:   wp.PayloadFormat,
		ContentType:     wp.ContentType,
		ResponseTopic:   wp.ResponseTopic,
		CorrelationData: wp.CorrelationData,
		User:            wp.User,
	}
	if wp.Present.Has(packet.PropMessageExpiry) {
		w.expiry, w.hasExp = wp.MessageExpiry, true
	}
	return w
}

// scheduleWill publishes w now, or after its delay when the session
// outlives the connection, whichever of the delay and the session's end
// comes first [MQTT-3.1.3-9]. connectMu must be held.
func (s *Server) scheduleWill(w *will, sess *session.Session) {
	d := time.Duration(min(w.delay, sess.Expiry())) * time.Second
	if d > 0 {
		s.saveWill(sess, w, time.Now().Add(d)) // the delay survives a restart
	}
	s.scheduleWillAt(w, sess, d)
}

// scheduleWillAt publishes w after d (at once when d <= 0) unless the
// session is taken back first. connectMu must be held.
func (s *Server) scheduleWillAt(w *will, sess *session.Session, d time.Duration) {
	if d <= 0 {
		s.publishWill(w)
		s.saveWill(sess, nil, time.Time{})
		return
	}
	pw := &pendingWill{w: w, sess: sess}
	id := sess.ClientID
	pw.timer = time.AfterFunc(d, func() {
		s.mu.Lock()
		cur := s.wills[id]
		if cur == pw {
			delete(s.wills, id)
		}
		s.mu.Unlock()
		if cur == pw {
			s.publishWill(w)
			s.saveWill(sess, nil, time.Time{})
		}
	})
	s.mu.Lock()
	if old := s.wills[id]; old != nil {
		old.timer.Stop()
	}
	s.wills[id] = pw
	s.mu.Unlock()
}

// takeWill handles a delayed will when its client connects again: with
// clean start the old session has ended and the will is published,
// otherwise it is cancelled.
func (s *Server) takeWill(clientID string, clean bool) {
	s.mu.Lock()
	pw := s.wills[clientID]
	if pw != nil {
		delete(s.wills, clientID)
		pw.timer.Stop()
	}
	s.mu.Unlock()
	if pw != nil && clean {
		s.publishWill(pw.w)
	}
}

func (s *Server) publishWill(w *will) {
	if strings.HasPrefix(w.msg.Topic, "$SYS") {
		// Only the broker publishes $SYS topics: a will there is dropped
		// like a client's PUBLISH there [MQTT-3.3.5-2], so that a client
		// cannot spoof (or retain over) the broker's own values.
		s.log.Debug("dropping will under $SYS", logClientID, w.msg.From, logTopic, w.msg.Topic)
		return
	}
	if p := w.auth.Policy(); p != nil && p.ACL != nil && !p.ACL.CanPublish(w.msg.From, w.username, w.msg.Topic) {
		s.log.Debug("dropping will: not authorised", logClientID, w.msg.From, logTopic, w.msg.Topic)
		return
	}
	m := w.msg // a copy: the expiry starts now
	if w.hasExp {
		m.Expires = time.Now().Add(time.Duration(w.expiry) * time.Second).UnixNano()
		if w.expiry == 0 {
			m.Expires = time.Now().UnixNano()
		}
	}
	s.log.Debug("publishing will", logClientID, m.From, logTopic, m.Topic)
	s.publish(&m)
}
