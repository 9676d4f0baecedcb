// Package bench is the load tool behind `gatemq bench`: MQTT v5 publishers,
// subscribers and idle connections driven through paho.golang against any
// broker, for throughput, latency and memory figures.
//
// # Subcommands
//
//   - pub: N publishers, QoS 0/1/2, fixed payload size, paced per client
//     (-I) or in total (-r), bounded by message count (-n) or time (-d).
//     For QoS > 0 it reports PUBACK/PUBCOMP latency percentiles.
//   - sub: N subscribers counting messages until an expected total, a
//     deadline or an idle timeout; reports the rate from first to last
//     message and end-to-end latency.
//   - pubsub: subscribers and publishers in one process, for checks that
//     no message was lost: sent, expected, received, lost.
//   - conn: N idle connections opened at a given rate.
//
// Every run prints a human-readable summary, or with -json one JSON object
// on stdout.
//
// # Payload
//
// Publishers write the send time, unix nanoseconds big-endian, in the first
// 8 bytes of every payload of 8 bytes or more; subscribers subtract it from
// the receive time. Both ends read the same wall clock, so end-to-end
// latency is only meaningful on one machine.
package bench
