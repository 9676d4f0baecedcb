# gatemq build, test and benchmark entry points. `make run` and `make test`
# work on a fresh Debian machine with only Go installed: test tools that
# come from Debian (mosquitto-clients, mosquitto) are installed here when
# missing and we are root.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 3s

.PHONY: all build run test test-deps vet fuzz-quick fuzz soak bench clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o gatemq .

# run starts the broker with the embedded defaults: 127.0.0.1:1883, data in ./data.
run: build
	./gatemq -data-dir ./data

# test-deps installs the Debian packages the interop tests and benchmarks
# drive (mosquitto_pub/mosquitto_sub and the mosquitto broker), and
# MQTT.js (npm package mqtt) under node for the WebSocket test, into
# $(MQTTJS_PREFIX) (gitignored; TestMain_WebSocketMQTTJS installs it
# there itself if this did not).
MQTTJS_PREFIX := .cache/npm

test-deps:
	@if ! { command -v mosquitto_sub && { command -v mosquitto || [ -x /usr/sbin/mosquitto ]; }; } >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing mosquitto-clients and mosquitto"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto-clients mosquitto >/dev/null; \
		else \
			echo "warning: mosquitto-clients missing and not root: interop tests will be skipped"; \
		fi; \
	fi
	@if ! { command -v node && command -v npm; } >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing nodejs and npm"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
		else \
			echo "warning: node or npm missing and not root: the MQTT.js WebSocket test will be skipped"; \
		fi; \
	fi
	@if command -v npm >/dev/null 2>&1 && [ ! -f $(MQTTJS_PREFIX)/node_modules/mqtt/package.json ]; then \
		echo "installing MQTT.js (npm mqtt@5) into $(MQTTJS_PREFIX)"; \
		npm install --no-save --no-audit --no-fund --loglevel=error --prefix $(MQTTJS_PREFIX) mqtt@5 >/dev/null \
			|| echo "warning: npm install mqtt@5 failed: the MQTT.js WebSocket test will try again or be skipped"; \
	fi

vet:
	@unformatted=$$(gofmt -l . | grep -v '^vendor/'); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

test: test-deps vet
	$(GO) test -race -count=1 -timeout 8m ./...
	$(MAKE) --no-print-directory fuzz-quick

# fuzz-quick runs every fuzz target for FUZZTIME; make fuzz runs them for minutes.
fuzz-quick:
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg >/tmp/gatemq-fuzz.log 2>&1 || { cat /tmp/gatemq-fuzz.log; exit 1; }; \
		done; \
	done

fuzz:
	$(MAKE) --no-print-directory fuzz-quick FUZZTIME=2m

# soak runs the kill -9 crash test of durable sessions (crash/) for
# SOAK_ROUNDS rounds; make test runs it for 20 with the other packages
# (CRASH_ROUNDS, CRASH_SEED: see crash/doc.go).
SOAK_ROUNDS ?= 500

soak:
	CRASH_ROUNDS=$(SOAK_ROUNDS) $(GO) test -count=1 -timeout 90m -run '^TestCrash_' -v ./crash/

bench: test-deps build
	./scripts/bench.sh

clean:
	rm -f gatemq
	rm -rf dist
