#!/usr/bin/env bash
# Cluster benchmarks: replication latency (3 and 5 nodes), idle gossip traffic, bootstrap of a
# fresh node at 100,000 instances, and failure detection; every node a real `roster agent` on
# loopback with mutual TLS. Prints a Markdown section and writes it to --out.
#
#   scripts/bench-cluster.sh [--out FILE] [--only propagation|idle|bootstrap|failure]... [--keep]
#   ROSTER_BIN=/path/to/roster scripts/bench-cluster.sh
#
# Does not need make. Uses ROSTER_BIN, else .build/release/roster; if neither exists it builds the
# release binary first (swift build -c release --product roster), unless BENCH_BUILD=0.
# All other arguments go to bench/cluster_bench.py (see --help). The whole run takes about 5 min.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${ROSTER_BIN:-$ROOT/.build/release/roster}"
if [ ! -x "$BIN" ]; then
    if [ -n "${ROSTER_BIN:-}" ] || [ "${BENCH_BUILD:-1}" = 0 ]; then
        echo "bench-cluster: no roster binary at $BIN" >&2
        exit 1
    fi
    SWIFT_DIR="${SWIFT_DIR:-/opt/swift/usr/bin}"
    export PATH="$SWIFT_DIR:$PATH"
    echo "bench-cluster: building the release binary (swift build -c release --product roster)" >&2
    swift build -c release --product roster
fi

PYTHON="${PYTHON:-python3}"
# The harness bounds every wait itself; this outer bound only catches a hung harness.
exec timeout --foreground --signal=TERM --kill-after=30 "${BENCH_TIMEOUT:-1200}" \
    "$PYTHON" "$ROOT/bench/cluster_bench.py" --bin "$BIN" "$@"
