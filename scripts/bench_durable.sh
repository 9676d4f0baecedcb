# bench_durable.sh: the durable-session loads of issue 3, sourced by
# bench.sh after its message loads (it uses bench.sh's brokers, bench,
# start_broker, stop_broker, log and counters; it is not run on its own).
#
# Every load starts a fresh broker of each kind, so that stored messages
# and sessions of one run do not weigh on the next:
#
#   ingest   durable QoS 1 publishing, 64-byte payloads by default, from 1
#            and 50 publishers to one topic with 1 and 100 offline
#            durable subscribers (v5, Session Expiry Interval 3600,
#            subscribed then disconnected): msgs/s, PUBACK p50/p99 and,
#            from /proc/PID/io write_bytes, disk bytes written per
#            message. gatemq acknowledges after the fsync of the batch
#            that holds the message; mosquitto runs with
#            `persistence false` (as in the other loads): it keeps the
#            queues of offline persistent sessions in memory and writes
#            nothing per message (with `persistence true` it would only
#            write at autosave or shutdown, never per message either).
#            One publisher keeps the brokers' Receive Maximum ($inflight)
#            PUBLISHes in flight (a bridge or an adapter forwarding a
#            backlog: enough for whole write batches), and once more
#            $pub_inflight, where each round trip waits for a batch's
#            flush interval and fsync; each of 50 keeps 10 (a fleet of
#            small devices).
#   drain    a durable session reconnecting (clean start 0) to
#            $drain_n messages queued while it was offline: msgs/s from
#            its first message to its last.
#   restart  gatemq only, one run: $restart_sessions durable sessions
#            and $restart_msgs stored messages (to one more durable
#            session), then a clean stop and the time from the process
#            start to its listener accepting a connection.

dur_topic=bench/durable

# durable_subs BROKER PORT PREFIX N FILTER: N offline durable sessions,
# PREFIX-sub0.., subscribed at QoS 1 to FILTER and disconnected.
durable_subs() {
	if ! timeout 300 "$gatemq" bench sub -h "127.0.0.1:$2" -c "$4" -q 1 -t "$5" -clean=false -expiry 3600 \
		-prefix "$3" -d 1ms -idle 0 >>"$out/bench-stderr.log" 2>&1; then
		failed_runs=$((failed_runs + 1))
		log "creating $4 durable sessions on $1 failed (see $out/bench-stderr.log)"
		return 1
	fi
}

# durable_fill BROKER PORT TOPIC N: N QoS 1 messages from 10 publishers.
durable_fill() {
	if ! timeout 600 "$gatemq" bench pub -h "127.0.0.1:$2" -c 10 -q 1 -s "$size" -t "$3" -n $(($4 / 10)) \
		-inflight 100 >>"$out/bench-stderr.log" 2>&1; then
		failed_runs=$((failed_runs + 1))
		log "publishing $4 messages to $1 failed (see $out/bench-stderr.log)"
		return 1
	fi
}

# durable_run TAG FN ARGS...: for each broker, a fresh broker, FN BROKER
# PID PORT ARGS..., and a stop; the data directory goes afterwards.
durable_run() {
	local tag=$1 fn=$2 b
	shift 2
	for b in "${brokers[@]}"; do
		if ! start_broker "$b" "$b-$tag"; then
			failed_runs=$((failed_runs + 1))
			continue
		fi
		"$fn" "$b" "$broker_pid" "$broker_port" "$@" || true
		stop_broker "$broker_pid"
		rm -rf "$tmp/$b-$tag.data"
	done
}

ingest() { # ingest BROKER PID PORT PUBS SUBS LABEL [INFLIGHT]
	local pubs=$4 subs=$5 inflight_each=${7:-$inflight}
	[ "$pubs" -gt 1 ] && inflight_each=10
	durable_subs "$1" "$3" dsub "$subs" "$dur_topic" || return 1
	bench "$1" "$2" "$3" "$6" pub -c "$pubs" -q 1 -s "$size" -t "$dur_topic" -n $((dur_n / pubs)) -inflight "$inflight_each"
}

drain() { # drain BROKER PID PORT LABEL
	durable_subs "$1" "$3" drain 1 bench/drain || return 1
	durable_fill "$1" "$3" bench/drain "$drain_n" || return 1
	bench "$1" "$2" "$3" "$4" sub -c 1 -q 1 -t bench/drain -clean=false -expiry 3600 -prefix drain \
		-n "$drain_n" -idle 10s -rm "$inflight"
}

log "durable loads: ingest $dur_n msgs, drain $drain_n, restart with $restart_msgs msgs and $restart_sessions sessions"
for run in $(seq "$runs"); do
	log "durable run $run of $runs"
	for pubs in 1 50; do
		for subs in 1 100; do
			durable_run "dur-$pubs-$subs-$run" ingest "$pubs" "$subs" "durable QoS 1, $pubs->$subs offline"
		done
	done
	durable_run "dur-w-$run" ingest 1 1 "durable QoS 1, 1->1 offline, $pub_inflight in flight" "$pub_inflight"
	durable_run "drain-$run" drain "durable drain of $drain_n queued"
done

# Restart to ready: gatemq only (mosquitto keeps no such state on disk
# with persistence off, and would hold the queues of every session in
# memory with it on).
human() { # 1000000 -> 1M, 10000 -> 10k
	if [ "$1" -ge 1000000 ] && [ $(($1 % 1000000)) = 0 ]; then
		echo "$(($1 / 1000000))M"
	elif [ "$1" -ge 1000 ] && [ $(($1 % 1000)) = 0 ]; then
		echo "$(($1 / 1000))k"
	else
		echo "$1"
	fi
}
restart_label="$(human "$restart_msgs") msgs, $(human "$restart_sessions") sessions"
if start_broker gatemq gatemq-restart; then
	log "restart: $restart_sessions durable sessions"
	per=$(((restart_sessions + 9) / 10))
	for k in $(seq 0 9); do
		durable_subs gatemq "$broker_port" "rs$k" "$per" bench/restart/idle || break
	done
	log "restart: $restart_msgs stored messages"
	durable_subs gatemq "$broker_port" rmsg 1 bench/restart/msgs &&
		durable_fill gatemq "$broker_port" bench/restart/msgs "$restart_msgs"
	stop_broker "$broker_pid"
	# Info level for the "restored durable state" line (sessions, took).
	sed -i 's/^level = "warn"/level = "info"/' "$tmp/gatemq-restart.toml"
	t0=$(date +%s%N)
	"$gatemq" -config "$tmp/gatemq-restart.toml" -listen "127.0.0.1:$broker_port" -data-dir "$tmp/gatemq-restart.data" \
		>>"$out/gatemq-restart.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	ready=0
	for _ in $(seq 6000); do # 30 s
		kill -0 "$pid" 2>/dev/null || break
		if (exec 3<>"/dev/tcp/127.0.0.1/$broker_port") 2>/dev/null; then
			ready=1
			break
		fi
		sleep 0.005
	done
	t1=$(date +%s%N)
	if [ "$ready" = 1 ]; then
		restored=$(grep -o 'msg="restored durable state"[^"]* sessions=[0-9]*' "$out/gatemq-restart.log" | tail -1 | grep -o '[0-9]*$' || true)
		printf '{"mode":"restart","label":"%s","broker":"gatemq","ready_ms":%d,"sessions":%s,"messages":%d,"stopped":"count"}\n' \
			"$restart_label" $(((t1 - t0) / 1000000)) "${restored:-0}" "$restart_msgs" >>"$results"
		log "restart: ready after $(((t1 - t0) / 1000000)) ms, ${restored:-?} sessions restored"
	else
		failed_runs=$((failed_runs + 1))
		log "restart: gatemq did not come back (see $out/gatemq-restart.log)"
	fi
	stop_broker "$pid"
	rm -rf "$tmp/gatemq-restart.data"
else
	failed_runs=$((failed_runs + 1))
fi
