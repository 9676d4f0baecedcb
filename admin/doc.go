// Package admin serves gatemq's admin API: HTTP with JSON bodies on a Unix
// socket (mode 0600: file permissions are the authentication) and,
// optionally, on a loopback TCP address where every request must carry
// the bearer token.
//
// # Endpoints
//
//	GET  /healthz                      the process answers
//	GET  /readyz                       listeners accepting, store restored
//	GET  /metrics                      Prometheus text exposition, names gatemq_*
//	GET  /api/v1/clients               client status records (?state=online|offline)
//	GET  /api/v1/clients/{client_id}   one client's status record
//	GET  /api/v1/sessions              sessions, disconnected durable ones included
//	GET  /api/v1/sessions/{client_id}  one session with its subscriptions
//	GET  /api/v1/retained              retained messages (topics and sizes, no payloads)
//	GET  /api/v1/ds                    the durable store's description (gatemq ds info)
//	GET  /api/v1/peers                 the peer group's members (gatemq peers)
//	GET  /api/v1/messages?topic=T&...  a page of archived messages (gatemq messages list)
//	GET  /api/v1/messages/{id}         one archived message (gatemq messages get)
//	POST or DELETE /api/v1/clients/{client_id}
//	                                   kick: v5 DISCONNECT 0x98, then close
//
// Errors are JSON objects {"error": "..."} with a 4xx or 5xx status.
//
// # Dependencies
//
// The package reads the broker, the store, the peer group and the
// message archive through small interfaces, Broker, Store, Peers and
// Archive, that *broker.Server, *boltstore.Store, *gossip.Group and
// *boltstore.Archive implement; tests use fakes. /metrics is written by
// prom.go, in the Prometheus text format, without a metrics library
// (metrics.go says why); the tests parse it with
// github.com/prometheus/common/expfmt, a test-only dependency.
package admin
