package admin

import (
	"fmt"
	"time"

	"gatemq/boltstore"
	"gatemq/broker"
	"gatemq/broker/packet"
	"gatemq/gossip"
)

// The JSON bodies of the API. The command-line client decodes them and
// prints them as tables; `gatemq sessions list` and `gatemq ds info` build
// the same values from the data directory when no broker runs.

// Health is the answer of GET /healthz.
type Health struct {
	Status  string `json:"status"`             // "ok"
	DataDir string `json:"data_dir,omitempty"` // the broker's, absolute; the commands check it
}

// ClientStatus is a client's status record, in GET /api/v1/clients and
// GET /api/v1/clients/{client_id}; `gatemq clients` builds the same from
// the data directory when no broker runs.
type ClientStatus struct {
	ClientID        string     `json:"client_id"`
	State           string     `json:"state"` // "online" or "offline"
	OnlineAt        time.Time  `json:"online_at"`
	OfflineAt       *time.Time `json:"offline_at,omitempty"`
	Site            string     `json:"site"`
	Remote          string     `json:"remote"`
	ProtocolVersion string     `json:"protocol_version"`
	Username        string     `json:"username"`
	KeepAlive       uint16     `json:"keepalive"`
	CleanStart      bool       `json:"clean_start"`
	Reason          string     `json:"disconnect_reason,omitempty"`
}

// Session is a session, in GET /api/v1/sessions.
type Session struct {
	ClientID      string    `json:"client_id"`
	State         string    `json:"state"` // "online" or "offline"
	Durable       bool      `json:"durable"`
	ExpirySeconds uint32    `json:"expiry_seconds"`
	LastSeen      time.Time `json:"last_seen"`
	Subscriptions []string  `json:"subscriptions"` // "filter (qos N)"
	Inflight      int       `json:"inflight"`
}

// SessionDetail is one session, in GET /api/v1/sessions/{client_id}.
type SessionDetail struct {
	Session
	Queued  int            `json:"queued"`
	Dropped uint64         `json:"dropped"`
	Subs    []Subscription `json:"subscription_details"`
}

// Subscription is one subscription of a session.
type Subscription struct {
	Filter            string `json:"filter"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local"`
	RetainAsPublished bool   `json:"retain_as_published"`
	RetainHandling    byte   `json:"retain_handling"`
	ID                uint32 `json:"subscription_id,omitempty"`
}

// Retained is a retained message, in GET /api/v1/retained.
type Retained struct {
	Topic   string     `json:"topic"`
	QoS     byte       `json:"qos"`
	Bytes   int        `json:"bytes"`
	From    string     `json:"from"`
	Expires *time.Time `json:"expires,omitempty"`
}

// DSInfo describes the durable store, in GET /api/v1/ds.
type DSInfo struct {
	Dir         string  `json:"dir"`
	Site        string  `json:"site"`
	Shards      int     `json:"shards"`
	Streams     int     `json:"streams"`
	Sessions    int     `json:"sessions"`
	Retained    int     `json:"retained"`
	Clients     int     `json:"clients"`        // client status records
	Online      int     `json:"clients_online"` // of them, online at this site
	Bytes       int64   `json:"bytes"`
	Generations []DSGen `json:"generations"`
}

// DSGen is one generation file of the store.
type DSGen struct {
	Generation uint32    `json:"generation"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Messages   uint64    `json:"messages"`
	Streams    int       `json:"streams"`
	Bytes      int64     `json:"bytes"`
	File       string    `json:"file"`
}

// Peer is a member of the peer group, in GET /api/v1/peers.
type Peer struct {
	Name    string    `json:"name"`
	Address string    `json:"address"`
	State   string    `json:"state"` // "alive", "suspect", "dead" or "left"
	Since   time.Time `json:"since"` // when this gateway saw it enter State
	Site    string    `json:"site"`
	Version string    `json:"version"`
	Self    bool      `json:"self"` // the gateway that answers
}

func newPeer(m gossip.Member) Peer {
	return Peer{Name: m.Name, Address: m.Addr, State: m.State.String(), Since: m.Since.UTC(),
		Site: m.Site, Version: m.Version, Self: m.Self}
}

// NewDSInfo converts the store's Info.
func NewDSInfo(in boltstore.Info) DSInfo {
	out := DSInfo{Dir: in.Dir, Site: in.Site.String(), Shards: in.Shards, Streams: in.Streams,
		Sessions: in.Sessions, Retained: in.Retained, Clients: in.Clients, Online: in.Online, Bytes: in.Bytes, Generations: []DSGen{}}
	for _, g := range in.Generations {
		out.Generations = append(out.Generations, DSGen{uint32(g.Gen), g.Start.UTC(), g.End.UTC(), g.Messages, g.Streams, g.Bytes, g.File})
	}
	return out
}

// FormatSubscription is how Session lists a subscription.
func FormatSubscription(filter string, qos byte) string {
	return fmt.Sprintf("%s (qos %d)", filter, qos)
}

// NewClientStatus converts a status record.
func NewClientStatus(r boltstore.ClientStatus) ClientStatus {
	out := ClientStatus{ClientID: r.ClientID, State: "offline", OnlineAt: r.OnlineAt.UTC(), Site: broker.SiteName(r.Site),
		Remote: r.Remote, ProtocolVersion: packet.Version(r.Protocol).String(), Username: r.Username,
		KeepAlive: r.KeepAlive, CleanStart: r.CleanStart, Reason: r.Reason}
	if r.Online {
		out.State = "online"
	}
	if !r.OfflineAt.IsZero() {
		t := r.OfflineAt.UTC()
		out.OfflineAt = &t
	}
	return out
}

func newSessionDetail(in broker.SessionInfo, subs []broker.SubscriptionInfo) SessionDetail {
	state := "offline"
	if in.Online {
		state = "online"
	}
	d := SessionDetail{
		Session: Session{ClientID: in.ClientID, State: state, Durable: in.Durable, ExpirySeconds: in.ExpirySeconds,
			LastSeen: in.LastSeen.UTC(), Subscriptions: []string{}, Inflight: in.Inflight},
		Queued: in.Queued, Dropped: in.Dropped, Subs: []Subscription{},
	}
	for _, s := range subs {
		d.Subscriptions = append(d.Subscriptions, FormatSubscription(s.Filter, s.QoS))
		d.Subs = append(d.Subs, Subscription{Filter: s.Filter, QoS: s.QoS, NoLocal: s.NoLocal,
			RetainAsPublished: s.RetainAsPublished, RetainHandling: s.RetainHandling, ID: s.ID})
	}
	return d
}

func newRetained(r broker.RetainedInfo) Retained {
	out := Retained{Topic: r.Topic, QoS: r.QoS, Bytes: r.Bytes, From: r.From}
	if !r.Expires.IsZero() {
		t := r.Expires.UTC()
		out.Expires = &t
	}
	return out
}
