package broker

// Attribute keys of the broker's log lines.
const (
	logClientID   = "client_id"
	logRemote     = "remote"
	logListener   = "listener"
	logReason     = "reason"
	logErr        = "err"
	logVersion    = "version"
	logKeepAlive  = "keepalive"
	logCleanStart = "clean_start"
	logPresent    = "session_present"
	logTopic      = "topic"
	logUsername   = "username"
)
