package bench

import (
	"fmt"
	"io"
)

// Header starts every JSON result: which subcommand ran, against what.
type Header struct {
	Mode   string `json:"mode"`
	Label  string `json:"label,omitempty"`
	Broker string `json:"broker,omitempty"`
	Addr   string `json:"addr"`
	// Stopped says why the run ended: "count" (every message sent or
	// received), "duration", "idle", "interrupted" or "error".
	Stopped string `json:"stopped"`
}

// BrokerCPU is the broker's CPU time over a run, when -broker-pid is set.
type BrokerCPU struct {
	// CPUSeconds is user plus system time from /proc/PID/stat, 10 ms
	// resolution.
	CPUSeconds *float64 `json:"broker_cpu_s,omitempty"`
	// CPUPerMsgUS is CPUSeconds over the messages the broker handled
	// (delivered to subscribers in sub and pubsub, received in pub), in µs.
	CPUPerMsgUS *float64 `json:"broker_cpu_us_per_msg,omitempty"`
	CPUError    string   `json:"broker_cpu_error,omitempty"`
}

func (b *BrokerCPU) set(m *cpuMeter, msgs int64) {
	d, ok, err := m.stop()
	if err != nil {
		b.CPUError = err.Error()
		return
	}
	if !ok {
		return
	}
	s := seconds(d)
	b.CPUSeconds = &s
	if msgs > 0 {
		us := float64(int64(float64(d)/float64(msgs)/1e1+0.5)) / 100 // µs, 2 decimals
		b.CPUPerMsgUS = &us
	}
}

func (b *BrokerCPU) text(w io.Writer) {
	switch {
	case b.CPUError != "":
		fmt.Fprintf(w, "broker cpu:      %s\n", b.CPUError)
	case b.CPUPerMsgUS != nil:
		fmt.Fprintf(w, "broker cpu:      %.2fs, %.2f µs/msg\n", *b.CPUSeconds, *b.CPUPerMsgUS)
	case b.CPUSeconds != nil:
		fmt.Fprintf(w, "broker cpu:      %.2fs\n", *b.CPUSeconds)
	}
}

// BrokerIO is what the broker wrote to disk over a run, when -broker-pid
// is set: write_bytes of /proc/PID/io, which counts what reaches the
// storage layer (page-cache writeback included), not write calls.
type BrokerIO struct {
	WriteBytes       *int64   `json:"broker_write_bytes,omitempty"`
	WriteBytesPerMsg *float64 `json:"broker_write_bytes_per_msg,omitempty"`
	IOError          string   `json:"broker_io_error,omitempty"`
}

func (b *BrokerIO) set(m *ioMeter, msgs int64) {
	n, ok, err := m.stop()
	if err != nil {
		b.IOError = err.Error()
		return
	}
	if !ok {
		return
	}
	b.WriteBytes = &n
	if msgs > 0 {
		per := float64(int64(float64(n)/float64(msgs)*10+0.5)) / 10 // 1 decimal
		b.WriteBytesPerMsg = &per
	}
}

func (b *BrokerIO) text(w io.Writer) {
	switch {
	case b.IOError != "":
		fmt.Fprintf(w, "broker disk:     %s\n", b.IOError)
	case b.WriteBytesPerMsg != nil:
		fmt.Fprintf(w, "broker disk:     %d bytes written, %.1f per msg\n", *b.WriteBytes, *b.WriteBytesPerMsg)
	case b.WriteBytes != nil:
		fmt.Fprintf(w, "broker disk:     %d bytes written\n", *b.WriteBytes)
	}
}

// PubResult is the result of `bench pub`.
type PubResult struct {
	Header
	QoS      int    `json:"qos"`
	Clients  int    `json:"clients"`
	Size     int    `json:"size"`
	Topic    string `json:"topic"`
	Sent     int64  `json:"sent"`
	Errors   int64  `json:"errors"`
	FirstErr string `json:"first_error,omitempty"`
	// Seconds runs from the first message to the last one acknowledged
	// (QoS 1, 2) or written to the socket (QoS 0); Rate is Sent over it.
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
	// AckLatency is from just before Publish to PUBACK (QoS 1) or
	// PUBCOMP (QoS 2), including any wait for an in-flight slot.
	AckLatency *Latency `json:"ack_latency,omitempty"`
	BrokerCPU
	BrokerIO
}

func (r *PubResult) text(w io.Writer) {
	fmt.Fprintf(w, "pub %s qos=%d clients=%d size=%d topic=%s: stopped by %s\n", r.Addr, r.QoS, r.Clients, r.Size, r.Topic, r.Stopped)
	fmt.Fprintf(w, "sent:            %d in %.3fs, %.0f msgs/s\n", r.Sent, r.Seconds, r.Rate)
	if r.Errors > 0 {
		fmt.Fprintf(w, "errors:          %d, first: %s\n", r.Errors, r.FirstErr)
	}
	latencyText(w, ackName(r.QoS)+" latency:", r.AckLatency)
	r.BrokerCPU.text(w)
	r.BrokerIO.text(w)
}

func ackName(qos int) string {
	if qos == 2 {
		return "pubcomp"
	}
	return "puback"
}

// SubResult is the result of `bench sub`.
type SubResult struct {
	Header
	QoS      int    `json:"qos"`
	Clients  int    `json:"clients"`
	Filter   string `json:"filter"`
	Expected int64  `json:"expected,omitempty"`
	Received int64  `json:"received"`
	// Seconds runs from the first message received to the last; Rate is
	// the messages per second over it.
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
	// Latency is end to end, from the publisher's timestamp in the
	// payload to receipt.
	Latency *Latency `json:"latency,omitempty"`
	BrokerCPU
	BrokerIO
}

func (r *SubResult) text(w io.Writer) {
	fmt.Fprintf(w, "sub %s qos=%d clients=%d filter=%s: stopped by %s\n", r.Addr, r.QoS, r.Clients, r.Filter, r.Stopped)
	if r.Expected > 0 {
		fmt.Fprintf(w, "received:        %d of %d expected in %.3fs, %.0f msgs/s\n", r.Received, r.Expected, r.Seconds, r.Rate)
	} else {
		fmt.Fprintf(w, "received:        %d in %.3fs, %.0f msgs/s\n", r.Received, r.Seconds, r.Rate)
	}
	latencyText(w, "latency:", r.Latency)
	r.BrokerCPU.text(w)
	r.BrokerIO.text(w)
}

// PubSubResult is the result of `bench pubsub`.
type PubSubResult struct {
	Header
	QoS    int    `json:"qos"`
	Pubs   int    `json:"pubs"`
	Subs   int    `json:"subs"`
	Size   int    `json:"size"`
	Topic  string `json:"topic"`
	Filter string `json:"filter"`
	Window int64  `json:"window"`
	// TargetRate is the total publishing rate asked for with -r or -I,
	// in msgs/s; 0 means as fast as possible.
	TargetRate float64 `json:"target_rate,omitempty"`
	Sent       int64   `json:"sent"`
	Errors     int64   `json:"errors"`
	FirstErr   string  `json:"first_error,omitempty"`
	// PubSeconds and PubRate are as Seconds and Rate in PubResult.
	PubSeconds float64 `json:"pub_seconds"`
	PubRate    float64 `json:"pub_rate"`
	// Expected is how many deliveries the messages sent make, from the
	// subscribers' filters; Lost is Expected minus Received when
	// positive, Extra the surplus (duplicates) otherwise.
	Expected int64 `json:"expected"`
	Received int64 `json:"received"`
	Lost     int64 `json:"lost"`
	Extra    int64 `json:"extra"`
	// RecvSeconds and RecvRate cover the first to the last message
	// received, over all subscribers: the throughput figure.
	RecvSeconds float64  `json:"recv_seconds"`
	RecvRate    float64  `json:"recv_rate"`
	Latency     *Latency `json:"latency,omitempty"`
	AckLatency  *Latency `json:"ack_latency,omitempty"`
	BrokerCPU
}

func (r *PubSubResult) text(w io.Writer) {
	fmt.Fprintf(w, "pubsub %s qos=%d pubs=%d subs=%d size=%d topic=%s filter=%s: stopped by %s\n",
		r.Addr, r.QoS, r.Pubs, r.Subs, r.Size, r.Topic, r.Filter, r.Stopped)
	fmt.Fprintf(w, "sent:            %d in %.3fs, %.0f msgs/s\n", r.Sent, r.PubSeconds, r.PubRate)
	if r.Errors > 0 {
		fmt.Fprintf(w, "errors:          %d, first: %s\n", r.Errors, r.FirstErr)
	}
	fmt.Fprintf(w, "received:        %d of %d expected, lost %d, extra %d\n", r.Received, r.Expected, r.Lost, r.Extra)
	fmt.Fprintf(w, "subscriber rate: %.0f msgs/s over %.3fs (first to last message)\n", r.RecvRate, r.RecvSeconds)
	latencyText(w, "latency:", r.Latency)
	latencyText(w, ackName(r.QoS)+" latency:", r.AckLatency)
	r.BrokerCPU.text(w)
}

// ConnResult is the result of `bench conn`.
type ConnResult struct {
	Header
	Clients   int     `json:"clients"`
	Connected int     `json:"connected"`
	Failed    int     `json:"failed"`
	FirstErr  string  `json:"first_error,omitempty"`
	Seconds   float64 `json:"seconds"` // first dial to last CONNACK
	Rate      float64 `json:"rate"`    // connections per second over Seconds
	// Dropped counts connections that ended while held idle.
	Dropped        int64    `json:"dropped"`
	ConnectLatency *Latency `json:"connect_latency,omitempty"`
	HeldSeconds    float64  `json:"held_seconds"`
	// RSS of the broker, with -broker-pid: before the first connection,
	// once all are up (after -settle), and the growth per 1,000.
	RSSBeforeKB  int64   `json:"rss_before_kb,omitempty"`
	RSSAfterKB   int64   `json:"rss_after_kb,omitempty"`
	RSSPer1000KB float64 `json:"rss_per_1000_kb,omitempty"`
	RSSError     string  `json:"rss_error,omitempty"`
}

func (r *ConnResult) text(w io.Writer) {
	fmt.Fprintf(w, "conn %s clients=%d: stopped by %s\n", r.Addr, r.Clients, r.Stopped)
	fmt.Fprintf(w, "connected:       %d in %.3fs, %.0f conn/s, failed %d\n", r.Connected, r.Seconds, r.Rate, r.Failed)
	if r.FirstErr != "" {
		fmt.Fprintf(w, "first error:     %s\n", r.FirstErr)
	}
	latencyText(w, "connect latency:", r.ConnectLatency)
	fmt.Fprintf(w, "held:            %.1fs, dropped %d\n", r.HeldSeconds, r.Dropped)
	if r.RSSError != "" {
		fmt.Fprintf(w, "broker rss:      %s\n", r.RSSError)
	} else if r.RSSAfterKB > 0 {
		fmt.Fprintf(w, "broker rss:      %d KiB idle, %d KiB with the connections, %.0f KiB per 1,000\n", r.RSSBeforeKB, r.RSSAfterKB, r.RSSPer1000KB)
	}
}

func latencyText(w io.Writer, name string, l *Latency) {
	if l == nil {
		return
	}
	fmt.Fprintf(w, "%-16s µs p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f (n=%d)\n", name, l.P50, l.P90, l.P99, l.P999, l.Max, l.Count)
}
