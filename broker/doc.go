// Package broker is gatemq's MQTT server: listeners, the per-connection
// read and write loops, topic matching, routing, retained messages, wills
// and the $SYS topics. It speaks MQTT 3.1, 3.1.1 and 5.0 through
// gatemq/broker/packet and keeps session state in gatemq/session.
//
// # Goroutines
//
// One goroutine accepts on each listener (Serve). Each connection has a
// reader goroutine (conn.serve), which owns the socket's read side and
// makes every change to its session, and a writer goroutine
// (conn.writeLoop), started after CONNECT, which owns the write side. A
// publisher's reader routes each message itself: it matches the topic
// tree and hands a Delivery to every matching session, which queues it and
// wakes that session's writer. Publishing never blocks on a subscriber: a
// full queue drops the message and counts it.
//
// The writer drains its connection's control packets first (CONNACK,
// acknowledgements, SUBACK), then what the session's flow-control window
// lets through, encoding into a pooled buffer and writing once per batch.
// Idle connections hold no pooled buffers.
//
// Whoever sets conn.writing owns the socket's write side until it clears
// it: the writer goroutine; the reader, which writes its replies itself
// before a read that may block (flushReplies); and, on a plain TCP
// connection, the store's writer goroutine. That one writes the
// acknowledgements a commit made ready (a durable PUBLISH is acknowledged
// after its commit) when no writer runs and nothing else is pending, in
// one write that does not wait (signalStored), rather than starting a
// writer goroutine for a few bytes; what a full socket buffer leaves goes
// to a writer goroutine, which writes it before anything else. It writes
// once the store has answered the whole batch (ackGroup), so that each
// publisher gets one write per commit.
//
// One more goroutine, the status tracker's (status.go), publishes the
// $SYS client connect and disconnect events and writes the client status
// records the connections changed, coalesced, one store write at a time;
// the connections only update its maps. It stops after the connections,
// in Close, so that their disconnects are written.
//
// A connection closes once (closeSocket). The reader then runs cleanup:
// it detaches the session, decides the will and starts session expiry. A
// new connection taking over a client identifier asks the old one to
// disconnect (v5: DISCONNECT 0x8E) and waits for that cleanup before it
// attaches the session.
//
// # Listeners: TLS and WebSocket
//
// ServeListener serves MQTT over TCP, over TLS (ListenerOptions.TLS, TLS
// 1.2 at least), over WebSocket at WSPath (ListenerOptions.WebSocket,
// ws.go) or over both. The TLS handshake runs on the connection's reader
// goroutine, bounded by the same deadline as CONNECT (conn.connectBy); a
// WebSocket's HTTP upgrade, and its TLS handshake, run on net/http's
// goroutines under ReadHeaderTimeout. Either way the accept loop never
// does I/O with a client, and the WebSocket reaches the connection code
// as a net.Conn. LoadTLS builds a listener's configuration from PEM files
// and Reload swaps it for new handshakes (GetConfigForClient reads an
// atomic pointer); connections already open keep theirs.
//
// # Authentication and authorisation
//
// A listener's Auth holds its AuthPolicy behind an atomic pointer, so a
// reload swaps it without locks. CONNECT is checked once (auth.go:
// password, anonymous access, certificate identity, will topic); the ACL
// is asked on every PUBLISH and every filter of a SUBSCRIBE on the
// reader, and on every PUBLISH the writer is about to write (appendDelivery),
// so queued, retained and resent messages are checked against the policy
// in force when they leave, and a revoked read permission stops them. A
// will is checked at CONNECT and again when it is published. The broker's
// own $SYS messages are not subject to the publish ACL.
//
// # Preset subscriptions
//
// A client's preset subscriptions (presets.go) are applied by its reader
// right after CONNECT, like a SUBSCRIBE, and by an operator's change
// (SetPreset, DeletePreset, SetPresetRules) on the caller's goroutine: the
// one change to a session not made by its reader. It goes through the
// session's and the topic tree's own locks, with connectMu held so that
// the session cannot end meanwhile, and Server.presets.mu orders it with
// the readers' own application, so that each connection gets each change
// once.
//
// # Lock order
//
// Server.presets.mu, then Server.connectMu, then Server.mu. retainStore.mu before topicTree.mu
// (a retained PUBLISH is routed under the retained store's write lock and
// a SUBSCRIBE takes its retained snapshot under its read lock) and before
// any session's mutex and conn.outMu; topicTree.mu is otherwise a leaf. A session's mutex (gatemq/session) may be taken while holding
// topicTree.mu (shared-group member selection checks Online), and
// conn.outMu is never held while taking any other lock. statusTracker.mu is a leaf. Session.Deliver
// calls conn.signal with the session's mutex held; signal takes only
// conn.outMu, and never blocks. A listener's rateLimiter.mu is a leaf.
// Offline rules (offline.go): dstate.mu before preader.mu, and both, and
// queue.mu, before a session's mutex; offline.mu is a leaf.
//
// # Limits
//
// Hostile and broken clients meet limits beyond the protocol's (see
// limits.go and the Options fields): packet size from the fixed header,
// with bodies allocated as their bytes arrive; connections overall, per
// listener and per source address and second; CONNECT time; topic levels;
// subscriptions per session; User Properties per packet; queued messages
// and bytes per session; inbound QoS 2 awaiting PUBREL (Receive Maximum
// and a timeout). Each refusal or drop is counted in Stats.
package broker
