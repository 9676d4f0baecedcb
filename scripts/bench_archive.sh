# bench_archive.sh: the message archive loads of issue 4, sourced by
# bench.sh after the other loads (it uses bench.sh's start_broker,
# stop_broker, bench, log, counters and sizes; it is not run on its own).
#
# gatemq only: the same loads against a gatemq with the rule
#
#   [[archive]]
#   topic = "#"
#
# (every message archived, in DATA_DIR/archive) and against one without,
# started side by side with the same settings and run in turn, $runs
# times: publish rate (msgs/s received by the subscribers, or acknowledged
# with no subscriber) and broker CPU per message. bench.sh prints them
# in a table of their own, results in $out/archive.jsonl, with the ratio
# archive/plain: the issue's target is a ratio of at least 0.7 (the rule
# costs under 30% of throughput).
#
#   qos0, qos1, fanin   the pubsub loads of the main table
#   nosub               QoS 1 from one publisher to a topic nobody
#                       subscribes to: the archive is the only consumer

archive_results=$out/archive.jsonl
: >"$archive_results"
saved_results=$results
results=$archive_results
abrokers=("gatemq+archive" gatemq)
declare -A apid aport
for b in "${abrokers[@]}"; do
	apid[$b]=0 aport[$b]=0
	if [ "$b" = "gatemq+archive" ]; then
		gatemq_extra=$'[[archive]]\ntopic = "#"'
	fi
	if start_broker gatemq "archive-$([ "$b" = gatemq ] && echo plain || echo rule)"; then
		apid[$b]=$broker_pid aport[$b]=$broker_port
	else
		log "cannot start $b: its archive loads are skipped"
	fi
	gatemq_extra=
done

# archive_load LABEL MODE ARGS...: the load against each in turn.
archive_load() {
	local label=$1 mode=$2 b
	shift 2
	for b in "${abrokers[@]}"; do
		if [ "${apid[$b]}" = 0 ] || ! kill -0 "${apid[$b]}" 2>/dev/null; then
			failed_runs=$((failed_runs + 1))
			log "$b is not running: $label skipped"
			continue
		fi
		if [ "$mode" = pubsub ]; then
			bench "$b" "${apid[$b]}" "${aport[$b]}" "$label" pubsub -s "$size" -d "$cap" -idle "$idle" \
				-window "$window" -inflight "$pub_inflight" -rm "$inflight" "$@"
		else
			bench "$b" "${apid[$b]}" "${aport[$b]}" "$label" pub -s "$size" -d "$cap" -inflight "$pub_inflight" "$@"
		fi
	done
}

log "archive loads: $runs run(s) against gatemq with and without [[archive]] topic = \"#\""
for run in $(seq "$runs"); do
	log "archive run $run of $runs"
	archive_load qos0 pubsub -q 0 -pubs 1 -subs 1 -t 'bench/%i' -f 'bench/%i' -n "$qos0_n"
	archive_load qos1 pubsub -q 1 -pubs 1 -subs 1 -t 'bench/%i' -f 'bench/%i' -n "$qos1_n"
	archive_load fanin pubsub -q "$fan_qos" -pubs "$fan" -subs 1 -t 'bench/in/%i' -f 'bench/in/+' -n "$fan_n"
	archive_load "QoS 1 1->0, no subscriber" pub -c 1 -q 1 -t bench/nosub -n "$qos1_n"
done
for b in "${abrokers[@]}"; do
	[ "${apid[$b]}" = 0 ] || stop_broker "${apid[$b]}"
done
results=$saved_results
