#!/usr/bin/env python3
"""Real-process chaos run for Roster (issue 5, part 6).

Five `roster agent` processes with mutual TLS on loopback. Writer threads register, update and
deregister instances at random nodes, through the native and the Consul API, and record the
outcome of every operation. Meanwhile a seeded schedule of faults kills random nodes with
`kill -9` and restarts them later on the same data dir, and cuts one node off the peer network
and heals it again. At the end the faults stop, every node is brought back, and the run waits
(against a deadline) for all five registries to be identical; then it checks every node against
the writers' ledger.

What is asserted, per instance (each instance belongs to one writer, so its operations are
sequential in real time):
  * the last acknowledged operation decides: a 2xx registration must be present everywhere with
    exactly that value (port and metadata `op`), a 2xx deregistration must be absent everywhere;
  * an instance that never had an acknowledged registration must be absent everywhere;
  * an operation without an answer (timeout, reset, 5xx) has an unknown outcome: the writer stops
    touching that instance, and either the state before it or its effect is accepted.
  A refused connection (nothing listening) or a 4xx means "not applied" and is not an unknown.

Why "the last acknowledged one wins" is the right expectation even when two writes to one
instance went to different nodes and are concurrent by vector clock: Roster then picks the
higher HLC stamp (Record.merge), and all nodes stamp from the same wall clock here. A write is
stamped before its fsync and acknowledgement, and the writer leaves MIN_GAP between the answer to
one operation on an instance and the next, so the next operation's stamp is strictly larger.

The fault schedule is a pure function of the seed (printed at the start); `--seed N` replays it.
Thread interleavings and exact timings are not replayable, only the schedule of faults and the
writers' choices.

A node is cut off with iptables rules on its peer traffic (chaos_faults.py says how); HTTP is
not touched, so the cut-off node keeps taking writes. The cut is verified: every other node must
see it `failed`, and no write may cross it (chaos_cut_watch.py).

Meanwhile TTL-checked instances are renewed at random nodes, and half of them are abandoned
halfway through: at the end the kept ones must be passing and the abandoned ones critical or
deregistered on every node (chaos_health.py).

The parts: chaos_faults (schedule, ports, iptables), chaos_ledger (writers and their ledger),
chaos_health (TTL workload), chaos_cut_watch (checks during a cut), chaos_checks (checks after
restarts and at the end) and chaos_run (the run that ties them together).

Usable standalone (`make chaos DURATION=600`, or `scripts/chaos.py --help`) and from
Tests/e2e/test_chaos.py (the short run of `make test`).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from chaos_common import NODES, ChaosFailure, tail  # noqa: F401 - ChaosFailure for importers
from chaos_faults import plan_faults
from chaos_run import ChaosRun, Report  # noqa: F401 - the API of Tests/e2e/test_chaos.py


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600, help="seconds of faults (default 600)")
    parser.add_argument("--seed", type=int, default=None, help="replays the fault schedule of this seed")
    parser.add_argument("--bin", default=None, help="the roster binary (default: $ROSTER_BIN or .build/debug/roster)")
    parser.add_argument("--workdir", default=None, help="where node data and logs go (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir even when the run passes")
    parser.add_argument("--no-partition", action="store_true", help="only kill and restart; never cut a node off")
    parser.add_argument("--plan", action="store_true", help="print the fault schedule of the seed and exit")
    args = parser.parse_args(argv)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    if args.plan:
        print(f"seed {seed}")
        for f in plan_faults(seed, args.duration, [f"n{i + 1}" for i in range(NODES)], not args.no_partition):
            print(f"  {f}")
        return 0
    if args.bin:
        os.environ["ROSTER_BIN"] = str(Path(args.bin).resolve())
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix=f"roster-chaos-{seed}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"chaos: seed {seed}, {args.duration:g}s of faults, binary {os.environ.get('ROSTER_BIN', '.build/debug/roster')}, "
          f"workdir {workdir}", flush=True)

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    tracked: list = []
    run = ChaosRun(workdir, tracked, seed, args.duration, partition=False if args.no_partition else True,
                   log=lambda m: print(m, flush=True))
    try:
        report = run.run()
    except BaseException as exc:  # noqa: BLE001 - AssertionError, pytest's Failed, KeyboardInterrupt
        print(f"\nchaos: FAILED: {exc}", flush=True)
        for n in tracked:
            print(f"\n--- last lines of {n.log_path} ---\n{tail(n.log_path, 30)}")
        print(f"\nchaos: {run.report.summary()}\nchaos: {run.replay_hint()}", flush=True)
        return 1
    print("\n" + report.summary(), flush=True)
    if args.keep or args.workdir:
        print(f"chaos: logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
