package broker

import (
	"strconv"
	"time"

	"gatemq/session"
)

// sysLoop publishes the $SYS topics every SysInterval, with Mosquitto's
// names, as retained messages. It idles while SysInterval is 0, and
// starts over when SetLimits changes it.
func (s *Server) sysLoop() {
	for s.sysTicks(s.limits().SysInterval) {
	}
}

// sysTicks publishes the $SYS topics now and every period (never for 0)
// until SysInterval changes, and returns true, or the server closes, and
// returns false.
func (s *Server) sysTicks(period time.Duration) bool {
	var tick <-chan time.Time
	if period > 0 {
		t := time.NewTicker(period)
		defer t.Stop()
		tick = t.C
		s.publishSys()
	}
	for {
		select {
		case <-tick:
			s.publishSys()
		case <-s.sysReset:
			return true
		case <-s.ctx.Done():
			return false
		}
	}
}

func (s *Server) publishSys() {
	st := s.Stats()
	u := strconv.FormatUint
	i := strconv.Itoa
	disconnected := max(st.Sessions-st.ClientsConnected, 0)
	for _, kv := range [...][2]string{
		{"version", s.opts.Version},
		{"uptime", strconv.Itoa(int(st.Uptime)) + " seconds"},
		{"clients/connected", i(st.ClientsConnected)},
		{"clients/active", i(st.ClientsConnected)},
		{"clients/disconnected", i(disconnected)},
		{"clients/inactive", i(disconnected)},
		{"clients/total", i(st.ClientsConnected + disconnected)},
		{"clients/maximum", i(st.ClientsMaximum)},
		{"messages/received", u(st.PacketsReceived, 10)},
		{"messages/sent", u(st.PacketsSent, 10)},
		{"publish/messages/received", u(st.PublishReceived, 10)},
		{"publish/messages/sent", u(st.PublishSent, 10)},
		{"publish/messages/dropped", u(st.PublishDropped, 10)},
		{"bytes/received", u(st.BytesReceived, 10)},
		{"bytes/sent", u(st.BytesSent, 10)},
		{"subscriptions/count", i(st.Subscriptions)},
		{"retained messages/count", i(st.Retained)},
	} {
		s.publish(&session.Message{Topic: "$SYS/broker/" + kv[0], Payload: []byte(kv[1]), Retain: true})
	}
}
