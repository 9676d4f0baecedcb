package conf

import (
	"fmt"
	"time"
)

// ClientStatus configures the client status records (one per client ID
// that ever connected, kept in the store). Table [client_status].
type ClientStatus struct {
	// OfflineRetention is how long the record of a client that went
	// offline is kept; "0" keeps records for ever. Clients with random
	// IDs (mosquitto_pub's default, assigned IDs) would otherwise add a
	// record each, for good. At least 1m. Key
	// client_status.offline_retention; default "720h" (30 days).
	OfflineRetention Duration `toml:"offline_retention"`
}

func defaultClientStatus() ClientStatus {
	return ClientStatus{OfflineRetention: Duration(30 * 24 * time.Hour)}
}

// clientStatus checks the [client_status] table.
func (v *validator) clientStatus(c ClientStatus) {
	if c.OfflineRetention != 0 && c.OfflineRetention < Duration(time.Minute) {
		v.add("client_status.offline_retention", fmt.Errorf("%s is out of range (want 0 for ever, or at least 1m0s)", c.OfflineRetention))
	}
}
