package admin

import (
	"fmt"
	"time"

	"gatemq/boltstore"
	"gatemq/broker"
)

// The JSON bodies of the API. The command-line client decodes them and
// prints them as tables; `gatemq sessions list` and `gatemq ds info` build
// the same values from the data directory when no broker runs.

// Client is a connected client, in GET /api/v1/clients.
type Client struct {
	ClientID        string    `json:"client_id"`
	Username        string    `json:"username"`
	Remote          string    `json:"remote"`
	Listener        string    `json:"listener"`
	ProtocolVersion string    `json:"protocol_version"`
	KeepAlive       uint16    `json:"keepalive"`
	ConnectedAt     time.Time `json:"connected_at"`
	Durable         bool      `json:"durable"`
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
	Stored  *time.Time `json:"stored,omitempty"` // absent when not known
}

// DSInfo describes the durable store, in GET /api/v1/ds.
type DSInfo struct {
	Dir         string  `json:"dir"`
	Site        string  `json:"site"`
	Shards      int     `json:"shards"`
	Streams     int     `json:"streams"`
	Sessions    int     `json:"sessions"`
	Retained    int     `json:"retained"`
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

// NewDSInfo converts the store's Info.
func NewDSInfo(in boltstore.Info) DSInfo {
	out := DSInfo{Dir: in.Dir, Site: in.Site.String(), Shards: in.Shards, Streams: in.Streams,
		Sessions: in.Sessions, Retained: in.Retained, Bytes: in.Bytes, Generations: []DSGen{}}
	for _, g := range in.Generations {
		out.Generations = append(out.Generations, DSGen{uint32(g.Gen), g.Start.UTC(), g.End.UTC(), g.Messages, g.Streams, g.Bytes, g.File})
	}
	return out
}

// FormatSubscription is how Session lists a subscription.
func FormatSubscription(filter string, qos byte) string {
	return fmt.Sprintf("%s (qos %d)", filter, qos)
}

func newClient(c broker.ClientInfo) Client {
	return Client{ClientID: c.ClientID, Username: c.Username, Remote: c.Remote, Listener: c.Listener,
		ProtocolVersion: c.ProtocolVersion, KeepAlive: c.KeepAlive, ConnectedAt: c.ConnectedAt.UTC(), Durable: c.Durable}
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
	out := Retained{Topic: r.Topic, QoS: r.QoS, Bytes: r.Bytes, From: r.From, Stored: newStored(r.Stored)}
	if !r.Expires.IsZero() {
		t := r.Expires.UTC()
		out.Expires = &t
	}
	return out
}
