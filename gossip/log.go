package gossip

// Log attribute keys.
const (
	logName     = "name"
	logAddress  = "address"
	logSite     = "site"
	logVersion  = "version"
	logPeer     = "peer"
	logPeers    = "peers"
	logSeeds    = "seeds"
	logErr      = "err"
	logLine     = "line"
	logLevel    = "memberlist_level"
	logOther    = "other_address"
	logDropped  = "dropped"
	logEncrypt  = "encrypted"
	logInterval = "probe_interval"
)
