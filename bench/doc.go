// Package bench is the load tool behind `gatemq bench`: MQTT v5
// publishers, subscribers and idle connections against any broker, for
// throughput, latency, CPU and memory figures. pub drives its QoS 0 and 1
// publishers with gatemq's own codec (rawpub.go); everything else goes
// through paho.golang.
// scripts/bench.sh runs it against gatemq and mosquitto and prints one
// table with `gatemq bench report`.
//
// # Subcommands
//
//   - pub: -c publishers at QoS -q, payload -s bytes, topic -t (%i is the
//     client index), paced per client (-I) or in total (-r), bounded by
//     messages per client (-n) or time (-d). Reports msgs/s and, for QoS
//     1 and 2, PUBACK or PUBCOMP latency percentiles.
//   - sub: -c subscribers to filter -t counting messages until -n arrived,
//     -d passed or nothing came for -idle. Reports msgs/s from the first
//     message to the last and end-to-end latency percentiles.
//   - pubsub: -subs subscribers (-f) and -pubs publishers (-t) in one
//     process. Subscribers are all subscribed before the first publish,
//     so the expected deliveries follow from the filters (see fanout),
//     and the result says sent, expected, received and lost.
//   - conn: -c idle connections opened at -r per second and held for -d,
//     with the broker's RSS before and after when -broker-pid is given.
//   - report: the Markdown comparison table from -json results labelled
//     with -label and -broker: medians over runs, ratios oriented so that
//     above 1 means the first broker is better.
//
// Every run prints a human-readable summary, or with -json one JSON object
// on stdout (PubResult, SubResult, PubSubResult, ConnResult). With
// -broker-pid it adds the broker's CPU time over the run from
// /proc/PID/stat and divides it by the messages handled; pub and sub
// add the bytes the broker wrote to disk (write_bytes of /proc/PID/io)
// per message.
//
// # Durable sessions
//
// Clients connect with a clean start and sessions that end with the
// connection, unless -expiry N (v5 Session Expiry Interval) keeps them
// and -clean=false resumes them by client ID (-prefix): `sub
// -clean=false -expiry 3600 -d 1ms` leaves offline durable subscribers
// behind, and the same command with -n drains what the broker queued for
// them. scripts/bench_durable.sh builds the durable loads of make bench
// from these.
//
// # Payload and latency
//
// Publishers write the send time, unix nanoseconds big-endian, in the
// first 8 bytes of every payload of 8 bytes or more; subscribers subtract
// it from the receive time. Both ends read the wall clock, so end-to-end
// latency is only meaningful on one machine. Percentiles come from a
// log-linear histogram (histogram): nearest rank, within 0.4%, in
// constant memory however long the run.
//
// # Flow control
//
// A QoS 0 publisher writes as fast as the socket takes it. A QoS 1 or 2
// publisher keeps -inflight publishes outstanding (the broker's Receive
// Maximum caps them): pub's own publishers with a window of packet
// identifiers, writing what the window lets through in one write and
// reading the PUBACKs on a second goroutine; pubsub's, and pub's at QoS
// 2 or with -paho, with one goroutine blocked in paho's Publish each. pubsub
// also bounds the deliveries in flight between its publishers and its
// subscribers (-window): without it a publisher fills the broker's queues
// faster than subscribers drain them, and the run measures queue limits
// and drop policy instead of throughput.
//
// # Driving paho cheaply, or not at all
//
// Through paho, the tool spent about twice the broker's CPU on a durable
// QoS 1 load (50 publishers, 10 in flight each: 3.2 s of the tool's CPU
// against 1.6 s of gatemq's for 300,000 messages), and the two brokers'
// rates were those of the tool: both answered in the same 4-5 ms. pub's
// own publishers spent 0.47 s there, and the rate doubled. pub -paho
// keeps the old way, to compare.
//
// paho.golang reads each packet a byte or two at a time and writes each
// with its own call, allocates several objects per packet, and copies
// every QoS 1 and 2 publish into its session store. The tool therefore
// hands paho a bufConn (buffered reads; writes coalesced by one flusher
// goroutine per connection), gives it a session store that keeps nothing
// (sessions are clean and never resumed), and raises the GC target to 400%
// unless GOGC is set. That cuts the tool's CPU per message by about 40%; it still
// spends about as much CPU per message as mosquitto does at QoS 0, and
// more at QoS 1, so on a small machine the throughput figures are those of
// broker and tool sharing the CPUs: compare brokers with the same tool on
// the same machine, and read the broker CPU per message as the figure
// least disturbed by the tool.
//
// # Goroutines
//
// Each connection has paho's reader, router and pinger goroutines plus the
// bufConn flusher; one of pub's own publishers has its writer, its
// reader and a pinger. Subscriber callbacks run on the router goroutine of
// their client and record into that client's subState; counters are
// atomic and read by the polling loop (waitProgress, every 5 ms), while
// histograms are merged only after disconnect, which waits for paho's
// goroutines to return.
package bench
