#!/usr/bin/env bash
# bench.sh: run the same loads against gatemq and mosquitto on loopback and
# print one table of medians (what `make bench` runs).
#
# Both brokers run side by side on free 127.0.0.1 ports with matched limits
# (in-flight window, queue length, TCP_NODELAY, logging at warn); every load
# is `gatemq bench` run in turn against each broker, BENCH_RUNS times. Every
# run is bounded in count and time and targets 127.0.0.1 only.
#
# Environment:
#   BENCH_RUNS=5        runs per load and broker; the table shows medians
#   BENCH_QUICK=1       a smoke run: small counts, 1 run unless BENCH_RUNS is set
#   BENCH_SIZE=64       payload bytes
#   BENCH_FAN_QOS=1     QoS of the fan-in and fan-out loads
#   BENCH_LAT_RATE=2000 msgs/s of the QoS 1 latency load
#   BENCH_CONNS=5000    idle connections of the memory load
#   BENCH_DURABLE=0     skip the durable-session loads (issue 3)
#   BENCH_ARCHIVE=0     skip the message archive loads (issue 4)
#   BENCH_OUT=DIR       keep results.jsonl, the table and broker logs in DIR
#   BENCH_NO_BUILD=1    use ./gatemq as it is
#   GATEMQ=PATH         use this gatemq binary (not built)
#   MOSQUITTO=PATH      the mosquitto binary (default: from PATH or /usr/sbin)
#
# Exit status: 0 when every run completed without a lost message or a
# failed connection, 1 otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
	runs=${BENCH_RUNS:-1}
	qos0_n=20000 qos1_n=10000 fan_n=200 lat_n=1000 conns=${BENCH_CONNS:-500} cap=10s
	dur_n=5000 drain_n=10000 restart_msgs=100000 restart_sessions=1000
else
	runs=${BENCH_RUNS:-5}
	qos0_n=300000 qos1_n=150000 fan_n=3000 lat_n=10000 conns=${BENCH_CONNS:-5000} cap=15s
	dur_n=50000 drain_n=100000 restart_msgs=1000000 restart_sessions=10000
fi
size=${BENCH_SIZE:-64}
fan_qos=${BENCH_FAN_QOS:-1}
lat_rate=${BENCH_LAT_RATE:-2000}
fan=50         # publishers of the fan-in, subscribers of the fan-out
inflight=1000  # brokers' in-flight window both ways (Receive Maximum), the subscribers' too
pub_inflight=100 # QoS 1 publishes each bench publisher keeps in flight
queued=100000  # per-session queue: more than the window of deliveries in flight
window=10000   # deliveries in flight between the bench publishers and subscribers
idle=5s        # a run with nothing sent or received for this long gives up

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- prerequisites ---------------------------------------------------------

mosq=${MOSQUITTO:-}
if [ -z "$mosq" ]; then
	mosq=$(command -v mosquitto || true)
	[ -z "$mosq" ] && [ -x /usr/sbin/mosquitto ] && mosq=/usr/sbin/mosquitto
fi
if [ -z "$mosq" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing mosquitto"
		(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null || true
	fi
	mosq=$(command -v mosquitto || true)
	[ -z "$mosq" ] && [ -x /usr/sbin/mosquitto ] && mosq=/usr/sbin/mosquitto
fi
if [ -z "$mosq" ]; then
	log "mosquitto is not installed and cannot be (not root?): apt-get install mosquitto"
	exit 1
fi

gatemq=${GATEMQ:-$root/gatemq}
if [ -z "${GATEMQ:-}" ] && [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
	log "building ./gatemq"
	go build -o gatemq .
fi

# Each idle connection is a socket in the bench tool and one in the broker.
want_fds=$((conns + 1024))
ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fds=$(ulimit -n)
if [ "$fds" != unlimited ] && [ "$fds" -lt "$want_fds" ]; then
	conns=$((fds - 1024))
	[ "$conns" -lt 100 ] && conns=100
	log "open files limited to $fds: measuring memory with $conns connections"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatemq-bench.XXXXXX")
out=${BENCH_OUT:-$tmp}
mkdir -p "$out"
results=$out/results.jsonl
: >"$results"

# --- brokers ---------------------------------------------------------------

pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port prints a port nothing listens on right now, below the kernel's
# ephemeral range so that no client socket holds it (the broker's bind may
# still lose a race: start_broker then retries with another).
free_port() {
	local p lo=32768
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	[ "$lo" -gt 12000 ] || lo=32768
	while :; do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# wait_listening PID PORT: 0 once PORT accepts connections, 1 if PID died
# or 10 s passed.
wait_listening() {
	local i
	for i in $(seq 200); do
		kill -0 "$1" 2>/dev/null || return 1
		if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# start_broker NAME TAG: starts a fresh broker and sets broker_pid and
# broker_port. TAG names its files. For gatemq, $gatemq_extra is added to
# its configuration file.
gatemq_extra=
start_broker() {
	local name=$1 tag=$2 try port pid
	for try in 1 2 3 4 5; do
		port=$(free_port)
		case $name in
		gatemq)
			mkdir -p "$tmp/$tag.data"
			cat >"$tmp/$tag.toml" <<-EOF
				[log]
				level = "warn"

				[mqtt]
				max_inflight = $inflight
				max_queued_messages = $queued

				# The conn load opens thousands of connections from one
				# address: no per-address connection rate.
				[[listener]]
				address = "127.0.0.1:1883"
				max_connection_rate = 0

				$gatemq_extra
			EOF
			"$gatemq" -config "$tmp/$tag.toml" -listen "127.0.0.1:$port" -data-dir "$tmp/$tag.data" \
				>>"$out/$tag.log" 2>&1 &
			pid=$!
			;;
		mosquitto)
			# TCP_NODELAY as Go sets it for gatemq: without it mosquitto's
			# PUBACKs wait on Nagle's algorithm (1 ms instead of 0.1).
			cat >"$tmp/$tag.conf" <<-EOF
				listener $port 127.0.0.1
				allow_anonymous true
				persistence false
				max_inflight_messages $inflight
				max_queued_messages $queued
				set_tcp_nodelay true
				log_dest stderr
				log_type error
				log_type warning
			EOF
			"$mosq" -c "$tmp/$tag.conf" >>"$out/$tag.log" 2>&1 &
			pid=$!
			;;
		esac
		pids+=("$pid")
		if wait_listening "$pid" "$port"; then
			broker_pid=$pid broker_port=$port
			return 0
		fi
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		log "$name did not start on port $port (try $try), see $out/$tag.log"
	done
	return 1
}

stop_broker() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# --- loads -----------------------------------------------------------------

failed_runs=0

# bench BROKER PID PORT LABEL ARGS...: one `gatemq bench` run, its JSON
# result appended to results.jsonl.
bench() {
	local broker=$1 pid=$2 port=$3 label=$4
	shift 4
	local rc=0 res
	res=$(timeout 300 "$gatemq" bench "$@" -h "127.0.0.1:$port" -json -label "$label" -broker "$broker" -broker-pid "$pid" \
		2>>"$out/bench-stderr.log") || rc=$?
	if [ -n "$res" ]; then
		printf '%s\n' "$res" >>"$results"
	fi
	if [ "$rc" != 0 ]; then
		failed_runs=$((failed_runs + 1))
		log "$label on $broker: exit $rc: ${res:-$(tail -n 1 "$out/bench-stderr.log")}"
	fi
}

brokers=(gatemq mosquitto)
log "$runs run(s) per load; results in $out"

# Memory: a fresh broker per run, so idle RSS is right after start and the
# growth is that of $conns idle connections alone.
for run in $(seq "$runs"); do
	for b in "${brokers[@]}"; do
		if ! start_broker "$b" "$b-conn-$run"; then
			failed_runs=$((failed_runs + 1))
			continue
		fi
		sleep 0.5 # let the broker finish starting before its idle RSS is read
		bench "$b" "$broker_pid" "$broker_port" conn conn -c "$conns" -r 2000 -d 1s -settle 1s
		stop_broker "$broker_pid"
	done
done

# Messages: one broker of each kind for all runs. A broker that died is
# restarted (its log says why), and one that cannot start is skipped, so
# that the other's figures still come out.
declare -A bpid bport
for b in "${brokers[@]}"; do
	bpid[$b]=0 bport[$b]=0
	if start_broker "$b" "$b"; then
		bpid[$b]=$broker_pid bport[$b]=$broker_port
	else
		log "cannot start $b: its message loads are skipped"
	fi
done

pubsub() { # pubsub LABEL ARGS...: the load against each broker in turn
	local label=$1 b
	shift
	for b in "${brokers[@]}"; do
		if [ "${bpid[$b]}" = 0 ]; then # could not start
			failed_runs=$((failed_runs + 1))
			continue
		fi
		if ! kill -0 "${bpid[$b]}" 2>/dev/null; then
			failed_runs=$((failed_runs + 1))
			log "$b died, restarting it"
			bpid[$b]=0
			start_broker "$b" "$b" || continue
			bpid[$b]=$broker_pid bport[$b]=$broker_port
		fi
		bench "$b" "${bpid[$b]}" "${bport[$b]}" "$label" pubsub -s "$size" -d "$cap" -idle "$idle" \
			-window "$window" -inflight "$pub_inflight" -rm "$inflight" "$@"
	done
}

for run in $(seq "$runs"); do
	log "run $run of $runs"
	pubsub qos0 -q 0 -pubs 1 -subs 1 -t 'bench/%i' -f 'bench/%i' -n "$qos0_n"
	pubsub qos1 -q 1 -pubs 1 -subs 1 -t 'bench/%i' -f 'bench/%i' -n "$qos1_n"
	pubsub fanin -q "$fan_qos" -pubs "$fan" -subs 1 -t 'bench/in/%i' -f 'bench/in/+' -n "$fan_n"
	pubsub fanout -q "$fan_qos" -pubs 1 -subs "$fan" -t 'bench/out' -f 'bench/out' -n "$fan_n"
	pubsub latency -q 1 -pubs 1 -subs 1 -t 'bench/lat' -f 'bench/lat' -n "$lat_n" -r "$lat_rate"
done
for b in "${brokers[@]}"; do
	[ "${bpid[$b]}" = 0 ] || stop_broker "${bpid[$b]}"
done

if [ "${BENCH_DURABLE:-1}" != 0 ]; then
	. scripts/bench_durable.sh
fi
if [ "${BENCH_ARCHIVE:-1}" != 0 ]; then
	. scripts/bench_archive.sh
fi

# --- table -----------------------------------------------------------------

echo
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
mosq_version=$({ "$mosq" -h 2>&1 || true; } | head -1)
echo "gatemq $version vs ${mosq_version:-mosquitto}, $runs run(s), payload $size B, $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
"$gatemq" bench report -brokers "$(IFS=,; echo "${brokers[*]}")" "$results" | tee "$out/table.md"
if [ -s "$out/archive.jsonl" ]; then
	echo
	echo "Message archive: gatemq with [[archive]] topic = \"#\" (gatemq+archive) against the same gatemq without it; ratio > 1.0 means the archive costs nothing"
	echo
	"$gatemq" bench report -brokers "gatemq+archive,gatemq" "$out/archive.jsonl" | tee "$out/archive.md"
fi

# archive.jsonl is there only when the archive loads ran (BENCH_ARCHIVE).
lost=$(cat "$results" $([ -f "$out/archive.jsonl" ] && echo "$out/archive.jsonl") | { grep -o '"lost":[0-9]*' || true; } | awk -F: '{s += $2} END {print s + 0}')
if [ "$lost" != 0 ] || [ "$failed_runs" != 0 ]; then
	echo
	echo "FAIL: $lost message(s) lost, $failed_runs run(s) failed (logs: ${BENCH_OUT:-set BENCH_OUT to keep them})"
	exit 1
fi
