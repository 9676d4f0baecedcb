package gossip

import (
	"encoding/json"
	"errors"
)

// meta is a node's memberlist metadata: what the other gateways learn of
// it besides its name and address. It travels as a JSON object; unknown
// fields are ignored, so later versions may add to it. memberlist caps it
// at 512 bytes (MetaMaxSize).
type meta struct {
	Site    string `json:"site,omitempty"`    // its store's site ID; "" without a store
	Version string `json:"version,omitempty"` // its gatemq version
	Leaving bool   `json:"leaving,omitempty"` // it is leaving (Group.Leave)
}

// errMetaTooLong is returned by encode when the metadata does not fit.
var errMetaTooLong = errors.New("node metadata too long")

// encode returns m as JSON of at most limit bytes.
func (m meta) encode(limit int) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, errMetaTooLong
	}
	return b, nil
}

// decodeMeta parses a peer's metadata. Metadata that does not parse, as
// from something other than gatemq, gives a zero meta: the peer is still
// listed, without site and version.
func decodeMeta(b []byte) meta {
	var m meta
	if len(b) == 0 || json.Unmarshal(b, &m) != nil {
		return meta{}
	}
	return m
}
