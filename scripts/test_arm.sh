#!/bin/sh
# test_arm.sh runs the ARM binaries of make build-arm under qemu-user
# (Debian qemu-user-static): version, check-config of the example config,
# and a publish/subscribe round trip against the emulated broker on a
# loopback port, driven by the host's gatemq bench (QoS 1, no message lost)
# and, when installed, mosquitto_pub/mosquitto_sub (a retained message).
# It skips an architecture, saying so, when its qemu is missing.
#
# Usage: scripts/test_arm.sh [DIST]   (default dist; the host binary: ./gatemq)
set -eu

dist=${1:-dist}
host=${GATEMQ:-./gatemq}
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

say() { printf 'test-arm: %s\n' "$*"; }
fail() { say "FAIL: $*"; [ -f "$tmp/log" ] && sed 's/^/  broker: /' "$tmp/log"; exit 1; }

# freeport prints a random high port; the broker's start confirms it is
# free, and the loop below tries another if not.
freeport() { echo $((20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000)); }

ran=0
for pair in arm64:aarch64 armv7:arm; do
	name=${pair%%:*}
	cpu=${pair#*:}
	bin=$dist/gatemq-linux-$name
	[ -x "$bin" ] || fail "$bin missing: run make build-arm"
	qemu=$(command -v "qemu-$cpu-static" || command -v "qemu-$cpu" || true)
	if [ -z "$qemu" ]; then
		say "SKIP $name: qemu-$cpu-static not found (Debian package qemu-user-static; make test-deps installs it as root)"
		continue
	fi
	start=$(date +%s)
	out=$("$qemu" "$bin" version) || fail "$name: version"
	say "$name: $out ($(wc -c <"$bin") bytes)"
	"$qemu" "$bin" check-config scripts/gatemq.toml >/dev/null 2>"$tmp/check" || { cat "$tmp/check"; fail "$name: check-config"; }

	for try in 1 2 3; do
		port=$(freeport)
		rm -rf "$tmp/data"
		"$qemu" "$bin" -listen "127.0.0.1:$port" -data-dir "$tmp/data" 2>"$tmp/log" &
		pid=$!
		up=
		for _ in $(seq 300); do
			if grep -q 'msg="gatemq started"' "$tmp/log"; then up=1; break; fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		[ -n "$up" ] && break
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
	done
	[ -n "$up" ] || fail "$name: broker did not start"

	"$host" bench pubsub -h "127.0.0.1:$port" -pubs 2 -subs 1 -t "arm/$name/%i" -f "arm/$name/+" -q 1 -n 200 >"$tmp/bench" 2>&1 ||
		{ cat "$tmp/bench"; fail "$name: gatemq bench pubsub"; }
	grep -q 'lost 0, extra 0' "$tmp/bench" || { cat "$tmp/bench"; fail "$name: messages lost"; }
	say "$name: bench pubsub QoS 1: $(grep -m1 '^received' "$tmp/bench" | tr -s ' ')"
	if command -v mosquitto_pub >/dev/null && command -v mosquitto_sub >/dev/null; then
		mosquitto_pub -h 127.0.0.1 -p "$port" -V 5 -q 1 -r -t "arm/$name/retained" -m "hello from $name" ||
			fail "$name: mosquitto_pub"
		got=$(mosquitto_sub -h 127.0.0.1 -p "$port" -V 311 -q 1 -t "arm/$name/retained" -C 1 -W 20) ||
			fail "$name: mosquitto_sub"
		[ "$got" = "hello from $name" ] || fail "$name: mosquitto_sub got '$got'"
	fi

	kill -TERM "$pid"
	wait "$pid" || fail "$name: exit status $? after SIGTERM"
	pid=
	grep -q 'msg=stopped' "$tmp/log" || fail "$name: no graceful stop"
	say "$name: ok: version, check-config, pub/sub round trip, graceful stop ($(($(date +%s) - start))s)"
	ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || say "SKIP: no qemu-user found, nothing was run"
exit 0
