package admin

// Log attribute keys.
const (
	logClientID = "client_id"
	logAddress  = "address"
	logErr      = "err"
	logFilter   = "filter"
	logTopic    = "topic"
	logApplied  = "applied"
)
