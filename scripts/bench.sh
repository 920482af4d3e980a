#!/usr/bin/env bash
# Benchmarks one release-built Roster node on loopback with wrk and writes BENCHMARKS.md.
#
#   make bench                       # builds the release binary first
#   ROSTER_BIN=.build/release/roster scripts/bench.sh
#
# Knobs: BENCH_DURATION (10s), BENCH_THREADS (2), BENCH_CONNECTIONS (64), BENCH_OUT (BENCHMARKS.md).
# It starts exactly one node, stops it on every exit path (by its PID), and bounds every step in time.
set -euo pipefail
cd "$(dirname "$0")/.."

ROSTER_BIN=${ROSTER_BIN:-.build/release/roster}
DURATION=${BENCH_DURATION:-10s}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
OUT=${BENCH_OUT:-BENCHMARKS.md}
LOG_LEVEL=${BENCH_LOG_LEVEL:-warning}
READ_INSTANCES=10
FSYNC_SAMPLES=500

die() { echo "bench: $*" >&2; exit 1; }
[ -x "$ROSTER_BIN" ] || die "$ROSTER_BIN not found; run 'make bench' (or 'swift build -c release') first"
command -v wrk >/dev/null || die "wrk not found; run 'make deps'"

# The data dir sits on the repository's disk (.run/ is git-ignored), not on a tmpfs, so fsync is real.
mkdir -p .run
work=$(mktemp -d "$PWD/.run/bench.XXXXXX")
node_pid=""

stop_node() {
  [ -n "$node_pid" ] || return 0
  if kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$node_pid" 2>/dev/null; then
      echo "bench: node $node_pid still running 5 s after SIGTERM; killing it" >&2
      kill -KILL "$node_pid" 2>/dev/null || true
    fi
  fi
  wait "$node_pid" 2>/dev/null || true
  node_pid=""
}

cleanup() {
  local code=$?
  stop_node
  if [ "$code" != 0 ] && [ -f "$work/node.log" ]; then
    echo "bench: failed; last lines of the node's log:" >&2
    tail -n 30 "$work/node.log" >&2 || true
  fi
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# MARK: - the node

read -r http_port dns_port bind_port < <(python3 - <<'EOF'
import socket
held, ports = [], []
while len(ports) < 3:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        t.close(); u.close(); continue
    held += [t, u]; ports.append(p)
print(*ports)
EOF
)
base="http://127.0.0.1:$http_port"

"$ROSTER_BIN" agent --node-name bench --data-dir "$work/data" \
  --http "127.0.0.1:$http_port" --dns "127.0.0.1:$dns_port" --bind "127.0.0.1:$bind_port" \
  --insecure-plaintext --log-level "$LOG_LEVEL" >"$work/node.log" 2>&1 &
node_pid=$!

http_ok() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null
}
deadline=$((SECONDS + 30))
until http_ok "$base/health"; do
  kill -0 "$node_pid" 2>/dev/null || die "the node exited before /health answered"
  [ "$SECONDS" -lt "$deadline" ] || die "the node did not answer /health within 30 s"
  sleep 0.1
done
echo "bench: node $node_pid ready on $base (data in $work/data)"

# MARK: - fsync latency of this disk

fsync_stats=$(python3 bench/benchlib.py fsync "$work/fsync.probe" "$FSYNC_SAMPLES")
read -r fsync_n fsync_p50 fsync_p99 fsync_mean <<<"$fsync_stats"
fs_type=$(stat -f -c %T "$work")
echo "bench: fsync of a 4 KiB append: p50 ${fsync_p50} ms, p99 ${fsync_p99} ms ($fsync_n samples, $fs_type)"

# MARK: - wrk runs

run_wrk() { # name script url
  local name=$1 script=$2 url=$3
  echo "bench: $name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s $script $url"
  timeout --kill-after=5 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$url" \
    | tee "$work/$name.txt"
  kill -0 "$node_pid" 2>/dev/null || die "the node died during the $name run"
}

# Prints: requests/s p50 p99 total non2xx socket-errors, from one wrk output.
parse_wrk() {
  awk '
    /Requests\/sec:/ { rps = $2 }
    /Latency Distribution/ { dist = 1; next }
    dist && $1 == "50%" { p50 = $2 }
    dist && $1 == "99%" { p99 = $2; dist = 0 }
    / requests in / { total = $1 }
    /^non-200 answers:/ { bad = $3 }
    /Socket errors:/ { sub(/.*Socket errors: */, ""); gsub(/ /, ""); sock = $0 }
    END {
      if (sock == "") sock = "none"
      if (bad == "") bad = "?"
      print rps, p50, p99, total, bad, sock
    }' "$1"
}

run_wrk register bench/register.lua "$base/v1/agent/service/register"
read -r reg_rps reg_p50 reg_p99 reg_total reg_bad reg_sock < <(parse_wrk "$work/register.txt")

python3 - "$base" "$READ_INSTANCES" <<'EOF'
import json, sys, urllib.request
base, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    body = json.dumps({"Name": "web", "ID": f"web-{i}", "Address": "127.0.0.1", "Port": 8000 + i, "Tags": ["v1"]})
    req = urllib.request.Request(f"{base}/v1/agent/service/register", data=body.encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
got = json.load(urllib.request.urlopen(f"{base}/v1/health/service/web", timeout=10))
assert len(got) == count, f"expected {count} instances of web, got {len(got)}"
EOF
run_wrk read bench/read.lua "$base/v1/health/service/web"
read -r read_rps read_p50 read_p99 read_total read_bad read_sock < <(parse_wrk "$work/read.txt")

instances=$(python3 -c '
import json, sys, urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1] + "/registry/services", timeout=60))["services"]
print(sum(len(v) for v in s.values()))' "$base" 2>/dev/null || echo "?")
rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$node_pid/status" 2>/dev/null || echo "")
rss=${rss_kib:+$((rss_kib / 1024)) MiB}

stop_started=$SECONDS
kill -TERM "$node_pid"
exit_code=""
for _ in $(seq 50); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$node_pid" 2>/dev/null; then
  exit_code="still running after 5 s (killed)"
  stop_node
else
  set +e; wait "$node_pid"; exit_code=$?; set -e
  node_pid=""
fi
echo "bench: node stopped: exit $exit_code in $((SECONDS - stop_started)) s"

# MARK: - BENCHMARKS.md

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
mem=$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || echo unknown)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
dirty=$([ -n "$(git status --porcelain 2>/dev/null | grep -v '^??' || true)" ] && echo " (with uncommitted changes)" || true)

cat >"$OUT" <<EOF
# Benchmarks

Written by \`make bench\` (\`scripts/bench.sh\`) on $(date -u +"%Y-%m-%d %H:%M UTC"), commit \`$rev\`$dirty.
One release-built node on loopback, fresh data dir, plaintext, wrk with $THREADS threads and
$CONNECTIONS connections for $DURATION per run. wrk and the node share the same $(nproc) cores, so
these figures are a floor, not what a node gets on a machine of its own.

## Machine

| | |
|---|---|
| cores (\`nproc\`) | $(nproc) |
| CPU | $cpu |
| memory | $mem |
| data dir filesystem | $fs_type |
| fsync latency, 4 KiB append + \`fsync\` ($fsync_n samples) | p50 ${fsync_p50} ms, p99 ${fsync_p99} ms, mean ${fsync_mean} ms |

## Results

| workload | requests/s | p50 | p99 | requests | non-2xx | socket errors |
|---|---:|---:|---:|---:|---:|---|
| register: \`PUT /v1/agent/service/register\`, a new service ID per request, fsync'd before the answer | $reg_rps | $reg_p50 | $reg_p99 | $reg_total | $reg_bad | $reg_sock |
| read: \`GET /v1/health/service/web\`, $READ_INSTANCES instances | $read_rps | $read_p50 | $read_p99 | $read_total | $read_bad | $read_sock |

- Instances in the registry after the register run: $instances.
- Node memory (RSS) after both runs: ${rss:-unknown}.
- Graceful stop after the runs: exit code $exit_code.
- Every acknowledged registration is on disk first (SPEC §4.1). One fsync per write would cap
  registrations near 1000 / ${fsync_mean} ms ≈ $(awk -v m="$fsync_mean" 'BEGIN { if (m > 0) printf "%.0f", 1000 / m; else print "?" }')/s on this disk;
  a register figure well above that shows group commit (many writes sharing one fsync) at work.

## Reproduce

\`\`\`sh
make bench            # release build, then everything below, and rewrites this file
\`\`\`

By hand:

\`\`\`sh
swift build -c release
.build/release/roster agent --node-name bench --data-dir /path/on/disk \\
  --http 127.0.0.1:8500 --dns 127.0.0.1:8600 --bind 127.0.0.1:8301 --insecure-plaintext --log-level $LOG_LEVEL &
wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s bench/register.lua http://127.0.0.1:8500/v1/agent/service/register
# register web-0 .. web-$((READ_INSTANCES - 1)) with PUT /v1/agent/service/register, then:
wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s bench/read.lua http://127.0.0.1:8500/v1/health/service/web
\`\`\`

fsync latency: $FSYNC_SAMPLES times, \`os.write\` of 4 KiB then \`os.fsync\` on one file in the data dir's
filesystem (\`python3 bench/benchlib.py fsync FILE\`); \`dd if=/dev/zero of=FILE bs=4k count=1000 oflag=dsync\`
gives the same order of figure.
EOF
echo "bench: wrote $OUT"
