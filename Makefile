# gatemq build, test and benchmark entry points. `make run` and `make test`
# work on a fresh Debian machine with only Go installed: test tools that
# come from Debian (mosquitto-clients, mosquitto) are installed here when
# missing and we are root.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 20000x

.PHONY: all build run test test-deps vet fuzz-quick fuzz soak bench clean
.PHONY: build-arm build-dist deb verify-unit test-arm test-deb

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
	@if ! { command -v systemd-analyze && command -v qemu-aarch64-static && command -v qemu-arm-static; } >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing systemd (systemd-analyze) and qemu-user-static"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd qemu-user-static >/dev/null \
				|| echo "warning: installing systemd and qemu-user-static failed: make verify-unit and test-arm will skip"; \
		else \
			echo "warning: systemd-analyze or qemu-user-static missing and not root: make verify-unit or test-arm will skip"; \
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
	$(MAKE) --no-print-directory verify-unit test-arm test-deb
	$(MAKE) --no-print-directory fuzz-quick

# fuzz-quick runs every fuzz target for FUZZTIME; make fuzz runs them for minutes.
# make test gives each a count of executions (FUZZTIME=20000x), not a
# duration: with a duration, Go 1.26's fuzz coordinator can fail a target
# with a bare "context deadline exceeded" when a busy machine keeps a
# worker from stopping in time (golang/go#75804, fixed in Go 1.27).
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

# Static release binaries in dist/ (CGO_ENABLED=0, stripped): build-arm
# for the gateways (linux/arm64, linux/arm/v7), build-dist adds linux/amd64.
DIST := dist
RELEASE := CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)"

build-arm:
	@mkdir -p $(DIST)
	GOARCH=arm64 $(RELEASE) -o $(DIST)/gatemq-linux-arm64 .
	GOARCH=arm GOARM=7 $(RELEASE) -o $(DIST)/gatemq-linux-armv7 .
	@ls -l $(DIST)/gatemq-linux-arm64 $(DIST)/gatemq-linux-armv7

build-dist: build-arm
	GOARCH=amd64 $(RELEASE) -o $(DIST)/gatemq-linux-amd64 .

# deb builds dist/gatemq_VERSION_{amd64,arm64,armhf}.deb from
# packaging/nfpm.yaml with tools/mkdeb (the nfpm library, in its own module).
deb: build-dist
	rm -f $(DIST)/gatemq_*.deb
	$(GO) -C tools/mkdeb build -o $(CURDIR)/$(DIST)/mkdeb .
	$(DIST)/mkdeb -version $(VERSION) -dist $(DIST) amd64 arm64 armhf

# verify-unit checks scripts/gatemq.service with systemd-analyze verify,
# with ExecStart pointing at ./gatemq; any warning fails.
verify-unit: build
	@if ! command -v systemd-analyze >/dev/null 2>&1; then \
		echo "verify-unit: SKIP: systemd-analyze not found (Debian package systemd)"; exit 0; \
	fi; \
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	sed "s|/usr/bin/gatemq|$(CURDIR)/gatemq|" scripts/gatemq.service >"$$tmp/gatemq.service" && \
	out=$$(systemd-analyze verify "$$tmp/gatemq.service" 2>&1); rc=$$?; \
	if [ $$rc != 0 ] || [ -n "$$out" ]; then echo "$$out"; echo "verify-unit: FAIL"; exit 1; fi; \
	echo "verify-unit: scripts/gatemq.service ok ($$(systemd-analyze --version | head -n1))"

# test-arm runs the ARM binaries under qemu-user: version, check-config, and
# a publish/subscribe round trip (scripts/test_arm.sh).
test-arm: build build-arm
	GATEMQ=./gatemq ./scripts/test_arm.sh $(DIST)

# test-deb checks the packages and installs the amd64 one into a temporary
# root with dpkg --root (scripts/test_deb.sh).
test-deb: deb
	@test -z "$$(gofmt -l tools/mkdeb)" || { echo "gofmt needed:"; gofmt -l tools/mkdeb; exit 1; }
	$(GO) -C tools/mkdeb vet ./...
	$(GO) -C tools/mkdeb test -count=1 ./...
	./scripts/test_deb.sh $(DIST)

clean:
	rm -f gatemq
	rm -rf dist
