package broker

import (
	"strconv"

	"gatemq/session"
)

// sysLoop publishes the $SYS topics every SysInterval, with Mosquitto's
// names, as retained messages.
func (s *Server) sysLoop() {
	s.publishSys()
	s.every(s.opts.SysInterval, s.publishSys)
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
