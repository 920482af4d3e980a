# Roster: build, test, run and benchmark. Works from a fresh clone: `make test`.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# The Swift toolchain lives in /opt/swift on our machines; CI's PATH may not have it.
SWIFT_DIR ?= /opt/swift/usr/bin
export PATH := $(SWIFT_DIR):$(PATH)
SWIFT ?= $(firstword $(wildcard $(SWIFT_DIR)/swift) swift)
PYTHON ?= python3

DEBUG_BIN := .build/debug/roster
RELEASE_BIN := .build/release/roster

APT_PACKAGES := liblz4-dev wrk bind9-dnsutils dnsperf iptables
BENCH_APT_PACKAGES := wrk etcd-server etcd-client
PY_IMPORTS := consul, pytest, requests, dns.resolver
PY_PACKAGES := py-consul==1.8.0 pytest requests dnspython
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

RUN_CONFIG ?= cluster-configs/dev-single.yaml
RUN_DIR ?= .run/dev-single
RUN_HTTP = $(shell sed -n 's/^http: *\([^ #]*\).*/\1/p' $(RUN_CONFIG))
RUN_DNS = $(shell sed -n 's/^dns: *\([^ #]*\).*/\1/p' $(RUN_CONFIG))

.PHONY: all deps build release test unit e2e certs run run5 run-single docker-build docker-up bench bench-deps bench-single bench-cluster bench-discovery bench-etcd bench-health bench-sim chaos sim clean

all: build

## deps: install only what is missing (Debian packages, then Python test packages)
deps:
	$(call apt_install_missing,$(APT_PACKAGES))
	@if ! $(PYTHON) -c 'import $(PY_IMPORTS)' 2>/dev/null; then \
		echo "deps: installing $(PY_PACKAGES)"; \
		$(PYTHON) -m pip install -q $(PY_PACKAGES) \
			|| $(PYTHON) -m pip install -q --break-system-packages $(PY_PACKAGES); \
	fi

## bench-deps: what the benchmarks run besides Roster: wrk, and etcd for the side-by-side section
bench-deps:
	$(call apt_install_missing,$(BENCH_APT_PACKAGES))

# apt_install_missing: installs those of the Debian packages $(1) that are not installed yet.
define apt_install_missing
	@missing=""; \
	for p in $(1); do dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		$(SUDO) apt-get update -qq; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

## build: debug build of everything, .build/debug/roster
build: deps
	$(SWIFT) build

## release: optimised build, .build/release/roster
release: deps
	$(SWIFT) build -c release

## test: every test: Swift unit tests, then end-to-end tests against the real binary
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test
	ROSTER_BIN=$(DEBUG_BIN) $(PYTHON) -m pytest -q Tests/e2e

## unit / e2e: one half of `make test`
unit: deps
	$(SWIFT) test

e2e: build
	ROSTER_BIN=$(DEBUG_BIN) $(PYTHON) -m pytest -q Tests/e2e

## certs: dev certificates for cluster-configs/ in .run/certs (CA + n1..n5), only what is missing
certs: build
	@ROSTER_BIN=$(DEBUG_BIN) scripts/dev-certs.sh .run/certs n1 n2 n3 n4 n5

## run: a local 3-node mutual-TLS cluster on loopback from cluster-configs/three/ (HTTP 8501-8503);
## Ctrl-C makes every node leave gracefully. run5: the same with cluster-configs/five/ (8521-8525).
run: certs
	@ROSTER_BIN=$(DEBUG_BIN) scripts/run-cluster.sh three

run5: certs
	@ROSTER_BIN=$(DEBUG_BIN) scripts/run-cluster.sh five

## run-single: one local node from $(RUN_CONFIG), plaintext; Ctrl-C stops it gracefully
run-single: build
	@mkdir -p $(RUN_DIR)
	@echo "Roster node from $(RUN_CONFIG), state in $(RUN_DIR)/"
	@echo "  HTTP API (native and Consul): http://$(RUN_HTTP)   e.g. curl http://$(RUN_HTTP)/v1/catalog/services"
	@echo "  Consul clients:               CONSUL_HTTP_ADDR=$(RUN_HTTP)"
	@echo "  DNS:                          dig @$(firstword $(subst :, ,$(RUN_DNS))) -p $(lastword $(subst :, ,$(RUN_DNS))) web.service.roster."
	@echo "  Ctrl-C stops it."
	@exec $(DEBUG_BIN) agent --config $(RUN_CONFIG) --data-dir $(RUN_DIR)

## docker-build / docker-up: the image of docker/Dockerfile and the 3-node mTLS cluster of
## docker/docker-compose.yml (HTTP on 8501-8503). Needs a Docker engine.
docker-build:
	docker build -f docker/Dockerfile -t roster:dev .

docker-up:
	docker compose -f docker/docker-compose.yml up --build

## bench: release build, then every benchmark section; writes BENCHMARKS.md (about 13 minutes).
## The simulator's scale table is deterministic (the same on any machine), so it is not re-run here:
## `make bench-sim` regenerates bench/sim-scale.md, which is committed and included as it is.
bench: release bench-deps
	@mkdir -p .run
	$(MAKE) --no-print-directory bench-etcd bench-single bench-cluster bench-discovery bench-health BENCH_BIN=$(RELEASE_BIN)
	scripts/bench-assemble.sh BENCHMARKS.md bench/sim-scale.md

BENCH_BIN ?= $(RELEASE_BIN)

## bench-etcd / bench-single / bench-cluster / bench-discovery: one section of BENCHMARKS.md each, into .run/.
## bench-etcd: Roster and etcd as 3-node clusters side by side (installs etcd if missing; about 3 minutes)
bench-etcd: bench-deps
	$(PYTHON) bench/etcd_bench.py --bin $(BENCH_BIN) --out .run/bench-etcd.md

bench-single:
	ROSTER_BIN=$(BENCH_BIN) BENCH_OUT=.run/bench-single.md scripts/bench.sh

bench-cluster:
	$(PYTHON) bench/cluster_bench.py --bin $(BENCH_BIN) --out .run/bench-cluster.md

bench-discovery:
	$(PYTHON) bench/discovery_bench.py --bin $(BENCH_BIN) --out .run/bench-discovery.md

## bench-health: HTTP checks following their target, takeover after kill -9, duplicate probes, CPU of 10k checks
bench-health:
	$(PYTHON) bench/health_bench.py --bin $(BENCH_BIN) --out .run/bench-health.md

## chaos: the long real-process chaos run of scripts/chaos.py: 5 mTLS nodes, writers, kill -9 and
## restarts, a node cut off with iptables (from deps); DURATION seconds of faults, SEED=N replays a schedule.
## CHAOS_BIN=path runs an already-built binary instead of building the debug one.
DURATION ?= 600
CHAOS_BIN ?=
chaos: $(if $(CHAOS_BIN),deps,build)
	ROSTER_BIN=$(or $(CHAOS_BIN),$(DEBUG_BIN)) $(PYTHON) scripts/chaos.py --duration $(DURATION) $(if $(SEED),--seed $(SEED))

## sim: the deterministic cluster simulator. `make sim SEED=N` replays one seed with its trace;
## `make sim SEEDS=10000 [START=1]` sweeps seeds START.. (release build). bench-sim: the scale table
## for 5, 50, 200 and 1,000 nodes into bench/sim-scale.md (deterministic; the 1,000-node run takes the longest).
SEEDS ?= 200
START ?= 1
sim:
	$(SWIFT) build -c release --product roster-sim
	@if [ -n "$(SEED)" ]; then .build/release/roster-sim --seed $(SEED); \
	 else .build/release/roster-sim --seeds $(SEEDS) --start $(START); fi

bench-sim:
	$(SWIFT) build -c release --product roster-sim
	.build/release/roster-sim --scale --out bench/sim-scale.md

clean:
	rm -rf .build .run

