#!/usr/bin/env bash
# Assembles BENCHMARKS.md from the section files that the bench-* targets write into .run/.
#
#   scripts/bench-assemble.sh OUT [SIM_FILE]
#
# Sections, in this order: .run/bench-etcd.md (Roster and etcd side by side), .run/bench-single.md,
# .run/bench-cluster.md, .run/bench-discovery.md, .run/bench-health.md, and the simulator's table from SIM_FILE if given
# (`make bench` passes the committed bench/sim-scale.md, which `make bench-sim` regenerates), else a placeholder.
# A missing section file is an error, so a failed section cannot leave stale figures behind.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/bench-assemble.sh OUT [SIM_FILE]}
sim=${2:-}
for f in .run/bench-etcd.md .run/bench-single.md .run/bench-cluster.md .run/bench-discovery.md .run/bench-health.md $sim; do
  [ -s "$f" ] || { echo "bench-assemble: $f is missing or empty; run its make target" >&2; exit 1; }
done

sim_section() {
  if [ -n "$sim" ]; then
    cat "$sim"
  else
    echo "## Simulator: convergence at scale"
    echo
    echo "Not measured yet: the simulator's \`make bench-sim\` target will write \`.run/bench-sim.md\`, and"
    echo "\`make bench\` includes it here once that target exists."
  fi
}

{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$(git rev-parse --short HEAD)\`, on a machine with $(nproc) cores."
  echo "Each section can be run alone: \`make bench-etcd\`, \`make bench-single\`, \`make bench-cluster\`, \`make bench-discovery\`, \`make bench-health\`$([ -n "$sim" ] && echo ', `make bench-sim` (deterministic, so its table is committed rather than re-run)')."
  echo "Load generators and nodes share the same cores, so every figure is a floor, not what a node gets on a machine of its own."
  echo
  cat .run/bench-etcd.md
  echo
  # scripts/bench.sh writes a whole file ("# Benchmarks", "## Machine", ...): one level down here.
  sed -e 's/^## /### /' -e '1s/^# .*/## Single node/' .run/bench-single.md
  echo
  cat .run/bench-cluster.md
  echo
  cat .run/bench-discovery.md
  echo
  cat .run/bench-health.md
  echo
  sim_section
} >"$out"
echo "bench: wrote $out"
