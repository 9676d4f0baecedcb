package conf

import "time"

// Config is the broker configuration: the embedded defaults overlaid with the
// keys of one TOML file. Each field's comment names its TOML key and default.
//
// A Config is a plain value; copying it is safe, but Listeners shares its
// backing array between copies.
type Config struct {
	// DataDir is the directory for persistent state. Key data_dir;
	// default "./data".
	DataDir string `toml:"data_dir"`

	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT):
	// the garbage collector works harder as the heap nears it. 0 leaves
	// the limit to the GOMEMLIMIT environment variable (none by default);
	// at least 16MiB otherwise. Key memory_limit; default "0".
	MemoryLimit Size `toml:"memory_limit"`

	// GCPercent is the Go garbage collector's target (as GOGC) while the
	// broker is busy: between collections the heap may grow by this
	// percentage of the live data. Higher spends less CPU per message
	// and more memory. While the broker is idle (allocating under
	// 4 MiB/s) the target is at most 100; memory_limit, when set, still
	// bounds the heap. 0 is 200, unless GOGC is set in the environment:
	// then GOGC's, at all times. Otherwise 25 to 1000. Key gc_percent;
	// default 0.
	GCPercent int `toml:"gc_percent"`

	// Log configures the logger main builds. Table [log].
	Log Log `toml:"log"`

	// MQTT holds protocol limits and broker behaviour. Table [mqtt].
	MQTT MQTT `toml:"mqtt"`

	// Listeners are the network endpoints, one [[listener]] table each.
	// Listener tables in the file replace the default list as a whole.
	// Default: one listener, address "127.0.0.1:1883", protocol "mqtt".
	Listeners []Listener `toml:"listener"`

	// DurableSessions configures durable sessions. Table
	// [durable_sessions].
	DurableSessions DurableSessions `toml:"durable_sessions"`

	// DurableStorage configures the message store. Table
	// [durable_storage].
	DurableStorage DurableStorage `toml:"durable_storage"`

	// Admin configures the admin API. Table [admin].
	Admin Admin `toml:"admin"`

	// ClientStatus configures the client status records. Table
	// [client_status].
	ClientStatus ClientStatus `toml:"client_status"`

	// PeerGroup configures the peer group of the site's gateways. Table
	// [peer_group].
	PeerGroup PeerGroup `toml:"peer_group"`

	// Offline are the offline message rules, one [[offline]] table each.
	// Default: none.
	Offline []Offline `toml:"offline"`

	// PresetSubscriptions are subscriptions the broker makes for clients
	// when they connect, one [[preset_subscription]] table each
	// (presets.go). Default none.
	PresetSubscriptions []PresetSubscription `toml:"preset_subscription"`

	// Archive lists the message archive rules, one [[archive]] table
	// each. Default: none.
	Archive []Archive `toml:"archive"`
}

// Log configures logging.
type Log struct {
	// Level is the minimum level logged: "debug", "info", "warn" or
	// "error". Key log.level; default "info".
	Level string `toml:"level"`

	// Format is "text" (slog.TextHandler) or "json" (slog.JSONHandler).
	// Key log.format; default "text".
	Format string `toml:"format"`
}

// MQTT holds protocol limits and broker behaviour.
type MQTT struct {
	// MaxPacketSize is the largest packet accepted from or sent to a client,
	// 16 bytes to 268435455 (256MiB-1, the largest the remaining-length
	// varint encodes). v5 clients learn it from CONNACK's Maximum Packet
	// Size. Key mqtt.max_packet_size; default "1MiB".
	MaxPacketSize Size `toml:"max_packet_size"`

	// MaxKeepalive is the largest keepalive in seconds a client may ask
	// for, 0 to 65535. Key mqtt.max_keepalive; default 65535.
	MaxKeepalive int `toml:"max_keepalive"`

	// SessionExpiryInterval is how long a disconnected MQTT 3.x session
	// with clean_session=0 is kept; 0 makes such sessions end with their
	// connection. v5 clients set their own Session Expiry Interval. At
	// most 4294967295s. Key mqtt.session_expiry_interval; default "2h".
	SessionExpiryInterval Duration `toml:"session_expiry_interval"`

	// MaxInflight is the server Receive Maximum and the number of
	// unacknowledged QoS 1 and 2 messages sent to one session, 1 to 65535.
	// Key mqtt.max_inflight; default 32.
	MaxInflight int `toml:"max_inflight"`

	// MaxQueuedMessages is how many messages one session queues beyond
	// MaxInflight, at least 1 (unlimited is not allowed: queues are
	// bounded). Key mqtt.max_queued_messages; default 1000.
	MaxQueuedMessages int `toml:"max_queued_messages"`

	// MaxQueuedBytes caps the payload bytes one session queues; 0 means no
	// byte cap. Key mqtt.max_queued_bytes; default "0".
	MaxQueuedBytes Size `toml:"max_queued_bytes"`

	// QueueQoS0Messages reports whether QoS 0 messages are queued for
	// offline persistent sessions. Key mqtt.queue_qos0_messages;
	// default false.
	QueueQoS0Messages bool `toml:"queue_qos0_messages"`

	// RetainAvailable reports whether retained messages are supported.
	// Key mqtt.retain_available; default true.
	RetainAvailable bool `toml:"retain_available"`

	// MaxTopicAlias is the Topic Alias Maximum the server accepts from
	// clients, and the most aliases it uses towards one, 0 to 65535; 0
	// disables topic aliases. Each alias holds a topic of up to 64 KiB
	// for the connection's life: 65535 of them could hold 4 GB. Key
	// mqtt.max_topic_alias; default 10 (as Mosquitto).
	MaxTopicAlias int `toml:"max_topic_alias"`

	// MaxQoS is the highest QoS the server grants, 0 to 2. Key
	// mqtt.max_qos; default 2.
	MaxQoS int `toml:"max_qos"`

	// SysInterval is how often $SYS topics are published; 0 disables them,
	// otherwise at least 1s. Key mqtt.sys_interval; default "10s".
	SysInterval Duration `toml:"sys_interval"`

	// ConnectTimeout is how long a new connection may take to send
	// CONNECT; more than 0. Key mqtt.connect_timeout; default "10s".
	ConnectTimeout Duration `toml:"connect_timeout"`

	// MaxClientIDLen is the longest client ID accepted in bytes, 23 to
	// 65535 (a server must accept 1 to 23 bytes, [MQTT-3.1.3-5]). Key
	// mqtt.max_client_id_len; default 65535.
	MaxClientIDLen int `toml:"max_client_id_len"`

	// DenySubscribe lists topic filters no client may subscribe to: a
	// SUBSCRIBE with one of them, exactly as written, gets 0x80
	// (Unspecified error) for it, in 3.x and 5.0 alike. Use it to forbid
	// "#" on a busy gateway. Key mqtt.deny_subscribe; default none.
	DenySubscribe []string `toml:"deny_subscribe"`

	// Limits against hostile and broken clients. Every refusal and drop
	// is counted in the broker's statistics.

	// MaxConnections caps concurrent client connections over all
	// listeners (each listener has its own cap too); those over it are
	// closed at once. 0 means unlimited. Key mqtt.max_connections;
	// default 0.
	MaxConnections int `toml:"max_connections"`

	// MaxTopicLevels caps the levels of a topic, 1 to 65535: a PUBLISH
	// beyond it ends the connection (v5 DISCONNECT 0x90), a will beyond
	// it refuses the CONNECT (v5 CONNACK 0x90), a SUBSCRIBE filter beyond
	// it (not counting $share/{group}/) gets 0x8F (0x80 in 3.x). Key
	// mqtt.max_topic_levels; default 128.
	MaxTopicLevels int `toml:"max_topic_levels"`

	// MaxSubscriptions caps the subscriptions of one session: a new one
	// beyond it gets 0x97 Quota exceeded (0x80 in 3.x). 0 means
	// unlimited. Key mqtt.max_subscriptions; default 1000.
	MaxSubscriptions int `toml:"max_subscriptions"`

	// MaxUserProperties caps the v5 User Properties of one packet, 1 to
	// 65535, counted while decoding: beyond it the client gets
	// DISCONNECT (or CONNACK) 0x97 Quota exceeded. Key
	// mqtt.max_user_properties; default 128.
	MaxUserProperties int `toml:"max_user_properties"`

	// AwaitRelTimeout is how long an incoming QoS 2 message waits for
	// its PUBREL, at least 1s; older exchanges are dropped and counted,
	// and a resend of the message is then a new message. How many may
	// wait is max_inflight, the server's Receive Maximum. Key
	// mqtt.await_rel_timeout; default "5m".
	AwaitRelTimeout Duration `toml:"await_rel_timeout"`
}

// Listener is one network endpoint, a [[listener]] table.
type Listener struct {
	// Address is host:port to listen on; an empty host means all
	// interfaces, port 0 a free port. Key listener[i].address; required in
	// a [[listener]] table, default "127.0.0.1:1883" in the default list.
	Address string `toml:"address"`

	// Protocol is the transport: "mqtt" (MQTT over TCP, or over TLS with
	// tls_cert) or "ws" (MQTT over WebSocket at path /mqtt, subprotocol
	// mqtt; wss with tls_cert). Key listener[i].protocol; default "mqtt".
	Protocol string `toml:"protocol"`

	// MaxConnections caps concurrent connections on this listener; 0
	// means unlimited. Key listener[i].max_connections; default 0.
	MaxConnections int `toml:"max_connections"`

	// MaxConnectionRate caps the new connections a second from one
	// source address (an IPv4 address or an IPv6 /64), in bursts of as
	// many: those over it are closed at once and counted. 0 means
	// unlimited. Key listener[i].max_connection_rate; default 50.
	MaxConnectionRate int `toml:"max_connection_rate"`

	// DurableSessions, when set, overrides durable_sessions.enable for
	// this listener's clients. Key listener[i].durable_sessions; default
	// unset (the global setting).
	DurableSessions *bool `toml:"durable_sessions"`

	// Authentication and authorisation (listener_auth.go).

	// AllowAnonymous lets in clients that give no user name. Key
	// listener[i].allow_anonymous; default unset, which means true when
	// the address is loopback-only (127.0.0.0/8, ::1 or localhost) and
	// false otherwise: see [Listener.AnonymousAllowed].
	AllowAnonymous *bool `toml:"allow_anonymous"`

	// PasswordFile is a file of user names and argon2id hashes (made
	// with gatemq passwd); clients giving a user name must match it.
	// Without one, user names are not checked and such clients count as
	// anonymous. Key listener[i].password_file; default "" (none).
	PasswordFile string `toml:"password_file"`

	// ACLFile is an ACL file in Mosquitto's acl_file format, checked on
	// every publish, subscription and delivery; an empty file denies
	// everything. Key listener[i].acl_file; default "" (everything is
	// allowed).
	ACLFile string `toml:"acl_file"`

	// TLS (listener_auth.go). A listener with tls_cert and tls_key
	// serves TLS 1.2 or later.

	// TLSCert is the PEM server certificate chain, leaf first. Key
	// listener[i].tls_cert; default "" (no TLS).
	TLSCert string `toml:"tls_cert"`

	// TLSKey is the PEM private key of TLSCert. Key listener[i].tls_key;
	// default "".
	TLSKey string `toml:"tls_key"`

	// ClientCA is a PEM file of the CAs that sign client certificates:
	// a certificate a client presents must verify against it. Key
	// listener[i].client_ca; default "" (clients are not asked for one).
	ClientCA string `toml:"client_ca"`

	// RequireCertificate refuses clients without a valid certificate;
	// it needs client_ca. Key listener[i].require_certificate; default
	// false.
	RequireCertificate bool `toml:"require_certificate"`

	// UseIdentityAsUsername makes the client certificate's subject
	// common name (or, without one, its first DNS, e-mail or URI
	// subject alternative name) the client's user name, in place of
	// CONNECT's user name and password; clients without one are refused.
	// It needs client_ca. Key listener[i].use_identity_as_username;
	// default false.
	UseIdentityAsUsername bool `toml:"use_identity_as_username"`

	// CRLFile is a PEM file of certificate revocation lists signed by a
	// CA of client_ca; a revoked client certificate is refused. It needs
	// client_ca. Key listener[i].crl_file; default "" (none).
	CRLFile string `toml:"crl_file"`
}

// setDefaults sets the defaults of a listener table, before its keys are
// decoded.
func (l *Listener) setDefaults() {
	l.Protocol = "mqtt"
	l.MaxConnectionRate = defaultMaxConnectionRate
}

// Default returns the built-in configuration, which is valid. Every call
// returns a new Config.
func Default() Config {
	return Config{
		DurableSessions: defaultDurableSessions(),
		DurableStorage:  defaultDurableStorage(),
		ClientStatus:    defaultClientStatus(),
		DataDir:         "./data",
		Log: Log{
			Level:  "info",
			Format: "text",
		},
		MQTT: MQTT{
			MaxPacketSize:         1 * unitMiB,
			MaxKeepalive:          65535,
			SessionExpiryInterval: Duration(2 * time.Hour),
			MaxInflight:           32,
			MaxQueuedMessages:     1000,
			MaxQueuedBytes:        0,
			QueueQoS0Messages:     false,
			RetainAvailable:       true,
			MaxTopicAlias:         10,
			MaxQoS:                2,
			SysInterval:           Duration(10 * time.Second),
			ConnectTimeout:        Duration(10 * time.Second),
			MaxClientIDLen:        65535,
			MaxTopicLevels:        128,
			MaxSubscriptions:      1000,
			MaxUserProperties:     128,
			AwaitRelTimeout:       Duration(5 * time.Minute),
			DenySubscribe:         []string{},
		},
		Listeners: []Listener{{Address: "127.0.0.1:1883", Protocol: "mqtt", MaxConnectionRate: defaultMaxConnectionRate}},
		PeerGroup: defaultPeerGroup(),
	}
}

// ApplyOverrides applies command-line flags: a non-empty listen replaces
// the address of the first listener (adding an "mqtt" listener if there is
// none), and a non-empty dataDir replaces DataDir. Call Validate afterwards.
func (c *Config) ApplyOverrides(listen, dataDir string) {
	if listen != "" {
		if len(c.Listeners) == 0 {
			var l Listener
			l.setDefaults()
			c.Listeners = []Listener{l}
		} else {
			// Copy, so a Config sharing the backing array is not changed.
			c.Listeners = append([]Listener(nil), c.Listeners...)
		}
		c.Listeners[0].Address = listen
	}
	if dataDir != "" {
		c.DataDir = dataDir
	}
}
