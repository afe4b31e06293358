# sessiongate — see README.md. Every target works on a fresh Debian machine
# with Go and Node installed; `make deps` installs the rest from Debian.
SHELL := /bin/bash
GO    ?= go
PKGS  := ./...

.PHONY: run build test test-go test-js test-e2e test-stress deps js-deps lint fmt fuzz bench bench-full cluster clean

# Every program a test runs, as program:Debian-package. A test whose program
# is missing FAILS (it never skips, in CI or not), so `make test` installs
# these first. Keep in sync with the tests: grep for exec.Command/LookPath
# (Go) and the executable paths in client-js/test and e2e/.
TEST_DEPS := redis-server:redis-server redis-cli:redis-tools redis-sentinel:redis-sentinel chromium:chromium haproxy:haproxy nginx:nginx prometheus:prometheus promtool:prometheus systemd-analyze:systemd

## run: one instance in embedded mode (memory store, in-process bus); demo at http://localhost:8080/
## (server API key: dev-local-api-key-0123 unless GATEWAY_API_KEYS is set; Ctrl-C drains for
## DRAIN_WINDOW, 2s here unless set, so a load balancer would see /readyz turn 503 first)
run:
	GATEWAY_API_KEYS=$${GATEWAY_API_KEYS:-dev-local-api-key-0123} DRAIN_WINDOW=$${DRAIN_WINDOW:-2s} $(GO) run ./cmd/gateway

## build: the gateway, example worker and load generator binaries into bin/
build:
	$(GO) build -o bin/gateway ./cmd/gateway
	$(GO) build -o bin/worker ./cmd/worker
	$(GO) build -o bin/loadgen ./cmd/loadgen

## deps: install what the tests need (redis-server, redis-tools, redis-sentinel, chromium, haproxy, nginx, prometheus, systemd) when missing; fail if it cannot
deps:
	@scripts/deps.sh $(TEST_DEPS)

# Node.js itself is a prerequisite, like Go (Debian's nodejs may be older).
js-deps: client-js/node_modules/.package-lock.json

client-js/node_modules/.package-lock.json: client-js/package-lock.json
	cd client-js && npm ci --no-audit --no-fund

## test: every test — Go (with -race), client-js (node + Chromium) and end-to-end
test: deps js-deps lint test-go test-js test-e2e

# Never -short: `go test -short` skips the slow real-process suites, which
# `make test` must always run.
test-go: deps
	$(GO) test -race -count=1 $(PKGS)

test-js: deps js-deps
	cd client-js && npm test

test-e2e: deps js-deps
	$(GO) test -race -count=1 -tags e2e -timeout 20m ./e2e/...

REPS ?= 3

## test-topologies: only the e2e fault tests on Redis Cluster and Sentinel (part of test-e2e; docs/SCALING.md)
.PHONY: test-topologies
test-topologies: deps js-deps
	$(GO) test -race -count=1 -tags e2e -timeout 20m -run 'TestRedisClusterFaults|TestRedisSentinelFaults' ./e2e/...

## test-stress: `make test` RUNS times (default 3) while stress-ng loads STRESS_CPUS cores (default 2)
RUNS ?= 3
test-stress:
	RUNS=$(RUNS) scripts/stress-test.sh
## lint: go vet + gofmt check
lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './client-js/node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

## fuzz: a short run of every fuzz target (FUZZTIME per target)
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## bench: Go micro-benchmarks (each next to its floor) + the small load profile
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./session/... ./connmgr/... ./pubsub/...
	GODEBUG=adaptivestackstart=0 $(GO) test -run '^$$' -bench . -benchtime 1x -count=1 ./bench/...
	bin/loadgen -profile small -reps $(REPS)

## bench-full: the big load profile (10k and 19k connections), REPS repetitions (default 3), goals judged on the median; PROFILE_DIR=dir also writes the gateway's CPU profiles of the handshake, fan-out, revocation and history phases there
bench-full: deps build
	bin/loadgen -profile full -reps $(REPS) $(if $(PROFILE_DIR),-profile-dir $(PROFILE_DIR))

## cluster: Redis (REDIS=single|cluster|sentinel, default single) + 3 gateway instances + haproxy (CLUSTER_LB=nginx: nginx) + 1 example worker + Prometheus (with the rules of deploy/prometheus) on localhost, for a person to try
REDIS ?= single
cluster: deps build
	CLUSTER_REDIS=$(REDIS) $(GO) run ./e2e/cmd/cluster

clean:
	rm -rf bin
