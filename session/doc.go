// Package session holds MQTT session state: the subscriptions of a client,
// the messages queued for it, the QoS 1 and 2 messages in flight in both
// directions and the packet identifiers they use.
//
// # Sessions and connections
//
// A Session outlives the network connections that use it. While a
// connection is attached (Attach), deliveries wake its writer through the
// wake function it registered; the writer then takes what the flow-control
// window allows with Next. While no connection is attached, deliveries are
// queued (QoS 0 only when Options.QueueQoS0 is set) up to Options.MaxQueued.
//
// Inbound QoS 2 exchanges awaiting PUBREL are capped by the caller's
// Receive Maximum (ReceiveQoS2) and, with Options.AwaitRelTimeout, dropped
// and counted once older than that, so a client that never sends PUBREL
// holds a bounded number of slots for a bounded time.
//
// # Concurrency
//
// Every method of Session is safe for concurrent use: deliveries arrive from
// the goroutines of publishing connections while the owning connection's
// reader handles acknowledgements. Each Session has one mutex guarding all
// of its state; it is held for memory work only and never across I/O. The
// wake function is called with that mutex held, so it must not block and
// must not call back into the session.
//
// A Registry maps client identifiers to sessions; its mutex is always taken
// before a Session's, never after.
package session
