"""A chaos run from start to end: the cluster, the writers and the TTL workload, the fault thread
that follows the schedule, and the checks at the end (see chaos.py for what is asserted)."""

from __future__ import annotations

import os
import random
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from chaos_checks import CONVERGE_TIMEOUT, EndChecks
from chaos_common import NODES, ChaosFailure, Cluster, ClusterNode
from chaos_cut_watch import CutWatching
from chaos_faults import ChaosNode, Fault, NetworkCut, plan_faults, stable_ports
from chaos_health import HealthWorkload
from chaos_ledger import WRITERS, Ledger, Writer


@dataclass
class Report:
    seed: int
    duration: float
    ops: int = 0
    acked: int = 0
    acked_registers: int = 0
    acked_deregisters: int = 0
    rejected: int = 0
    refused: int = 0
    unknown: int = 0
    instances: int = 0
    kills: int = 0
    restarts: int = 0
    cuts: int = 0
    isolation_seconds: list[float] = field(default_factory=list)
    isolated_view_seconds: list[float] = field(default_factory=list)
    cut_probes: int = 0
    rejoin_seconds: list[float] = field(default_factory=list)
    converge_seconds: float | None = None
    members_seconds: float | None = None
    lost: int = 0
    lost_at_restart: int = 0
    durability_checked: int = 0
    resurrected: int = 0
    phantom: int = 0
    partition: bool = True
    elapsed: float = 0.0
    health: str = ""  # HealthWorkload.summary()
    false_criticals: int = 0

    def summary(self) -> str:
        def secs(xs: list[float]) -> str:
            return "[" + ", ".join(f"{x:.1f}" for x in xs) + "]"
        lines = [
            f"chaos seed={self.seed} duration={self.duration:.0f}s total={self.elapsed:.0f}s",
            f"  ops: {self.ops} sent, {self.acked} acked ({self.acked_registers} registrations, "
            f"{self.acked_deregisters} deregistrations), {self.rejected} rejected (4xx), "
            f"{self.refused} refused (node down), {self.unknown} unknown outcome; {self.instances} instances",
            f"  faults: {self.kills} kill -9, {self.restarts} restarts, {self.cuts} cut-offs"
            + ("" if self.partition else " (cut-offs disabled)"),
            f"  cut-off: others saw it failed after (s) {secs(self.isolation_seconds)}, it saw no one alive "
            f"after (s) {secs(self.isolated_view_seconds)}, writes kept from crossing it: {self.cut_probes}; "
            f"rejoined after mid-run heal (s): {secs(self.rejoin_seconds)}",
            f"  after the last heal: registries identical in {self._s(self.converge_seconds)}, "
            f"every member alive everywhere in {self._s(self.members_seconds)}",
            f"  restarted nodes held their own acknowledged writes: {self.durability_checked} checked, "
            f"{self.lost_at_restart} missing",
            f"  lost acknowledged writes: {self.lost}; resurrected deregistrations: {self.resurrected}; "
            f"phantoms: {self.phantom}",
        ] + ([self.health] if self.health else [])
        return "\n".join(lines)

    @staticmethod
    def _s(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}s"


class ChaosRun(CutWatching, EndChecks):
    def __init__(self, workdir: Path, tracked: list, seed: int, duration: float,
                 partition: bool | None = None, log: Callable[[str], None] = print,
                 extra_args: list[str] | None = None):
        """`partition`: True requires the cut-off, False disables it, None uses it when possible."""
        self.workdir = workdir
        self.tracked = tracked
        self.seed = seed
        self.duration = duration
        self.want_partition = partition
        self._log = log
        self.extra_args = list(extra_args or [])
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        self.report = Report(seed=seed, duration=duration)
        self.errors: list[str] = []  # failures noticed by background threads
        self.errors_lock = threading.Lock()
        self.expected_down: set[str] = set()
        self.killed_at: dict[str, float] = {}
        self.probe_count = 0
        self.writers_stop = threading.Event()
        self.faults_stop = threading.Event()
        self.slipped = 0.0
        self.maybe_probes: set[str] = set()  # probe writes without an answer: may or may not exist
        self.probes: set[str] = set()  # instances written across cuts: not the writers'
        self.t0 = time.monotonic()
        self.cluster: Cluster | None = None
        self.net: NetworkCut | None = None
        self.partition_reason: str | None = None
        self.health: HealthWorkload | None = None

    # -- output

    def log(self, msg: str) -> None:
        self._log(f"[{time.monotonic() - self.t0:7.2f}s] {msg}")

    def fail_later(self, msg: str) -> None:
        with self.errors_lock:
            self.errors.append(msg)
        self.log(f"ERROR: {msg}")

    def replay_hint(self) -> str:
        return (f"seed {self.seed} (replay the fault schedule: scripts/chaos.py --seed {self.seed} "
                f"--duration {self.duration:g}, or ROSTER_CHAOS_SEED={self.seed} for the pytest run); "
                f"node logs and data in {self.workdir}")

    # -- the whole run

    def run(self) -> Report:
        started = time.monotonic()
        try:
            self._run()
        finally:
            self.teardown()
            self.report.elapsed = time.monotonic() - started
        return self.report

    def _run(self) -> None:
        names = [f"n{i + 1}" for i in range(NODES)]
        tag = f"{os.getpid()}-{self.seed % 10000:04d}"
        self.net = NetworkCut(tag, self.log)
        if self.want_partition is False:
            self.partition_reason = "disabled"
        else:
            self.partition_reason = self.net.setup(names)
            if self.partition_reason and self.want_partition:
                raise ChaosFailure(f"cannot cut nodes off: {self.partition_reason} (or run with --no-partition)")
        self.report.partition = self.partition_reason is None
        if self.partition_reason:
            self.log(f"WARNING: cut-offs disabled: {self.partition_reason}")

        faults = plan_faults(self.seed, self.duration, names, partition=self.report.partition)
        self.log(f"seed {self.seed}; {NODES} nodes, {WRITERS} writers, {self.duration:g}s of faults; schedule:")
        for f in faults:
            self._log(f"           {f}")

        ports = stable_ports(3 * NODES, random.Random(self.rng.random()))
        cluster = Cluster(self.workdir, self.tracked, size=NODES, extra_args=self.extra_args,
                          node_class=ChaosNode, ports=ports)
        self.cluster = cluster
        if self.report.partition:
            for n in cluster.nodes:
                n.procs_file = self.net.procs_file(n.name)
        cluster.start(timeout=60)
        self.log("cluster formed: " + ", ".join(f"{n.name} http={n.http_port} peer={n.bind_port} pid={n.proc.pid}"
                                                 for n in cluster.nodes))

        self.health = health = HealthWorkload(cluster.nodes, random.Random(self.seed * 1000 + 99), self.log,
                                              self.fail_later)
        health.register()

        stop = self.writers_stop
        fault_stop = self.faults_stop
        writers = [Writer(i, random.Random(self.seed * 1000 + i), cluster.nodes, self.ledger, stop)
                   for i in range(WRITERS)]
        monitors: list[threading.Thread] = []
        faulter = threading.Thread(target=self._faults, args=(faults, fault_stop, monitors), name="faults", daemon=True)
        self.phase_start = time.monotonic()
        for w in writers:
            w.start()
        health.start(abandon_at=self.phase_start + self.duration / 2)
        faulter.start()
        # The workload itself: faults and writes for `duration` seconds, or until the schedule is
        # done if it slipped (a restart blocks the schedule until the node answers).
        faulter.join()
        fault_stop.set()
        stop.set()
        for w in writers:
            w.join()
        for m in monitors:
            m.join()
        for w in writers:
            if w.error is not None:
                raise ChaosFailure(f"writer {w.index} crashed: {''.join(traceback.format_exception(w.error))}")
        if getattr(self, "fault_error", None) is not None:
            raise self.fault_error
        self.tally()
        self.log(f"faults stopped; {self.report.acked} acked of {self.report.ops} ops"
                 + (f"; faults ran up to {self.slipped:.1f}s late (restarts block the schedule)"
                    if self.slipped > 0.5 else ""))

        # Stop faults: heal the cut, bring back every node that is down.
        self.check_unexpected_exits()
        if self.net.cut_node:
            self.log(f"heal {self.net.cut_node}")
            self.net.heal()
        down = [n for n in cluster.nodes if not n.running]
        for n in down:
            self.log(f"restart {n.name}")
            n.launch()
            self.report.restarts += 1
        for n in down:
            n.wait_ready()
        for n in down:
            self.check_durable(n)
        self.expected_down.clear()
        healed = time.monotonic()
        self.log("every node up and the network whole; waiting for identical registries")

        self.wait_converged(healed)
        self.wait_members(healed)
        health.wait_settled(healed, CONVERGE_TIMEOUT)
        health.finish()
        self.report.health = health.summary()
        self.report.false_criticals = len(health.false_criticals)
        if health.false_criticals:
            self.fail_later(f"{len(health.false_criticals)} sample(s) saw an instance not passing although its "
                            f"client had a renewal acknowledged within the TTL: "
                            + "; ".join(health.false_criticals[:10]))
        self.check_stable()
        self.check_ledger()
        with self.errors_lock:
            errors = list(self.errors)
        if errors:
            raise ChaosFailure(f"{len(errors)} failure(s) during the run; {self.replay_hint()}:\n  " + "\n  ".join(errors))

    # -- faults

    def _faults(self, faults: list[Fault], stop: threading.Event, monitors: list[threading.Thread]) -> None:
        self.fault_error: BaseException | None = None
        assert self.cluster is not None and self.net is not None
        try:
            cut_delay = 0.0
            for f in faults:
                # A restart blocks until the node answers, so events can run late. A heal keeps
                # the planned length of its cut by counting from when the cut really happened.
                due = self.phase_start + f.at + (cut_delay if f.action == "heal" else 0.0)
                if stop.wait(timeout=max(0.0, due - time.monotonic())):
                    return
                late = time.monotonic() - self.phase_start - f.at
                self.slipped = max(self.slipped, late)
                if f.action == "cut":
                    cut_delay = max(0.0, late)
                self.check_unexpected_exits()
                node = self.cluster[f.node]
                if f.action == "kill":
                    if not node.running:
                        continue
                    pid = node.proc.pid
                    self.killed_at[node.name] = time.monotonic()
                    node.kill9()
                    self.expected_down.add(node.name)
                    self.report.kills += 1
                    self.log(f"kill -9 {node.name} (pid {pid})" + (" [cut off]" if self.net.cut_node == node.name else ""))
                elif f.action == "restart":
                    if node.running:
                        continue
                    t = time.monotonic()
                    node.start()
                    self.expected_down.discard(node.name)
                    self.report.restarts += 1
                    self.log(f"restarted {node.name} (pid {node.proc.pid}), ready in {time.monotonic() - t:.2f}s")
                    self.check_durable(node)
                elif f.action == "cut":
                    peers = [n for n in self.cluster.nodes if n is not node]
                    self.net.cut(node, peers)
                    self.report.cuts += 1
                    self.log(f"cut off {node.name} (peer port {node.bind_port})")
                    m = threading.Thread(target=self._monitor, args=(self._watch_isolation, node, stop), daemon=True)
                    m.start()
                    monitors.append(m)
                elif f.action == "heal":
                    self.net.heal()
                    self.log(f"healed {node.name}")
                    m = threading.Thread(target=self._monitor, args=(self._watch_rejoin, node, stop), daemon=True)
                    m.start()
                    monitors.append(m)
            stop.wait(timeout=max(0.0, self.phase_start + self.duration - time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - re-raised by the run
            self.fault_error = exc
            self.log(f"fault thread failed: {exc!r}")
            stop.set()  # ends the workload early; the run re-raises this

    def _monitor(self, watch: Callable[[ClusterNode, threading.Event], None], node: ClusterNode,
                 stop: threading.Event) -> None:
        try:
            watch(node, stop)
        except Exception:  # noqa: BLE001 - a failure of the run, with its traceback
            self.fail_later(f"{watch.__name__}({node.name}) crashed:\n{traceback.format_exc()}")

    def check_unexpected_exits(self) -> None:
        assert self.cluster is not None
        for n in self.cluster.nodes:
            if n.name not in self.expected_down and n.proc is not None and n.proc.poll() is not None:
                self.expected_down.add(n.name)  # report once
                self.fail_later(f"{n.name} exited by itself with code {n.proc.returncode}\n{n.log_tail()}")

    def teardown(self) -> None:
        """Kills every process this run started (by PID), then removes its iptables rules and cgroups."""
        self.faults_stop.set()  # when the run ends early: no thread goes on with faults or writes
        self.writers_stop.set()
        if self.health is not None:
            self.health.stop.set()
        if self.cluster is not None:
            self.cluster.cleanup()
        if self.net is not None:
            self.net.teardown()
