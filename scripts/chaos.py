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

Cutting a node off: every node runs in a cgroup of its own (a `sh` wrapper joins it and then
`exec`s the agent, so the PID is the agent's). An iptables chain of this run, jumped to from
OUTPUT on `lo`, then drops (1) TCP to the node's peer port, (2) TCP from its peer port, and
(3) TCP from the node's cgroup to the other nodes' peer ports: its own outbound dials use
ephemeral source ports, so a rule on its port alone would not stop them. HTTP is not touched:
the cut-off node keeps taking writes. The cut is verified: every other node must see it
`failed`, and it must see every other node as not alive.

Usable standalone (`make chaos DURATION=600`, or `scripts/chaos.py --help`) and from
Tests/e2e/test_chaos.py (the short run of `make test`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
E2E_DIR = REPO_ROOT / "Tests" / "e2e"
if str(E2E_DIR) not in sys.path:
    sys.path.insert(0, str(E2E_DIR))

import requests  # noqa: E402
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError  # noqa: E402

from conftest import ALIVE, FAILED, STATUS_NAMES, Cluster, ClusterNode, tail, wait_until  # noqa: E402

NODES = 5
MAX_DOWN = 2  # at most this many nodes killed at once (the cut-off node is not counted)
WRITERS = 4
MIN_GAP = 0.005  # seconds between the answer to one operation on an instance and the next one
MAX_KEYS_PER_WRITER = 400  # then writers only update, deregister and re-register
REQUEST_TIMEOUT = (1.0, 10.0)  # connect, read
CONVERGE_TIMEOUT = float(os.environ.get("ROSTER_CHAOS_CONVERGE_TIMEOUT", "90"))
ISOLATION_TIMEOUT = 30.0  # for the cut to show in every node's member list
PROBE_WINDOW = 3.0  # seconds a write must not cross a cut (normal propagation: well under 1 s)
SERVICES = [f"svc-{c}" for c in "abcdef"]


class ChaosFailure(AssertionError):
    pass


# MARK: - the fault schedule


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the fault phase started
    action: str  # kill | restart | cut | heal
    node: str

    ORDER = {"heal": 0, "restart": 1, "cut": 2, "kill": 3}

    def __str__(self) -> str:
        return f"{self.at:7.2f}s {self.action:<7} {self.node}"


def plan_faults(seed: int, duration: float, names: list[str], partition: bool = True) -> list[Fault]:
    """The faults of a run: a pure function of its arguments.

    Kills every 2-5 s (at most MAX_DOWN nodes down at once), each node down for 1-6 s; a node
    whose restart would fall after `duration` comes back when the faults stop. Cuts: in long runs
    some cut-offs of 10-20 s with gaps of 15-45 s, and always a last one starting 15-22 s before
    the end that lasts until the faults stop, so that the final convergence is one after a heal.
    A node is not killed while it is cut off (nor just before), so that the cut is seen from both
    sides and the writes it takes meanwhile have to merge back.
    """
    rng = random.Random(seed)
    faults: list[Fault] = []
    windows: list[tuple[float, float, str]] = []
    if partition:
        last_start = max(duration * 0.4, duration - rng.uniform(15, 22))
        t = rng.uniform(8, 15)
        while t + 20 + 10 < last_start:
            length = rng.uniform(10, 20)
            windows.append((round(t, 2), round(t + length, 2), rng.choice(names)))
            t += length + rng.uniform(15, 45)
        windows.append((round(last_start, 2), float("inf"), rng.choice(names)))
    for start, end, node in windows:
        faults.append(Fault(start, "cut", node))
        if end != float("inf"):
            faults.append(Fault(end, "heal", node))
    max_downtime = 6.0
    back_at: dict[str, float] = {}
    t = rng.uniform(2, 4)
    while t < duration - 2:
        up = [n for n in names if back_at.get(n, 0.0) <= t]
        spared = {node for start, end, node in windows if t <= end and t + max_downtime >= start}
        candidates = [n for n in up if n not in spared]
        if candidates and len(names) - len(up) < MAX_DOWN:
            victim = rng.choice(candidates)
            faults.append(Fault(round(t, 2), "kill", victim))
            restart = t + rng.uniform(1, max_downtime)
            if restart < duration:
                faults.append(Fault(round(restart, 2), "restart", victim))
                back_at[victim] = restart
            else:
                back_at[victim] = float("inf")
        t += rng.uniform(2, 5)
    return sorted(faults, key=lambda f: (f.at, Fault.ORDER[f.action], f.node))


# MARK: - ports, cgroups and iptables


def stable_ports(count: int, rng: random.Random) -> list[int]:
    """Free loopback ports (TCP and UDP) below the kernel's ephemeral range.

    A killed node's port must still be free when it restarts; a port from the ephemeral range can
    meanwhile become some outgoing connection's source port, and the restart would fail to bind.
    """
    low = 32768
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    lo_port, hi_port = (20000, low - 1) if low > 21000 else (10000, 19999)
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randint(lo_port, hi_port)
        if port in ports:
            continue
        ok = True
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            ports.append(port)
    return ports


def cgroup2_root() -> Path | None:
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "cgroup2":
                return Path(parts[1])
    except OSError:
        pass
    return None


class NetworkCut:
    """Cuts one node off the peer network with iptables; see the module docstring."""

    def __init__(self, tag: str, log: Callable[[str], None]):
        self.log = log
        self.chain = f"RCHAOS-{tag}"[:28]
        self.cg_root = cgroup2_root()
        self.cg_dir = self.cg_root / f"roster-chaos-{tag}" if self.cg_root else None
        self.ready = False
        self.jumped = False
        self.cut_node: str | None = None

    def cgroup_path(self, name: str) -> str:
        """The node's cgroup as iptables' `-m cgroup --path` wants it: relative to the cgroup2 root."""
        assert self.cg_dir is not None and self.cg_root is not None
        return str((self.cg_dir / name).relative_to(self.cg_root))

    def procs_file(self, name: str) -> Path:
        assert self.cg_dir is not None
        return self.cg_dir / name / "cgroup.procs"

    def setup(self, names: list[str]) -> str | None:
        """Makes the cgroups and the (empty) chain. Returns why it cannot, or None when ready."""
        if os.geteuid() != 0:
            return "not root"
        if shutil.which("iptables") is None:
            return "iptables is not installed (apt-get install iptables)"
        if self.cg_dir is None:
            return "no cgroup2 hierarchy is mounted"
        try:
            for name in names:
                (self.cg_dir / name).mkdir(parents=True, exist_ok=True)
            self._ipt("-N", self.chain)
            self._ipt("-I", "OUTPUT", "1", "-o", "lo", "-j", self.chain)
            self.jumped = True
            # Prove that the cgroup match works here before relying on it.
            self._ipt("-A", self.chain, "-p", "tcp", "-m", "cgroup", "--path", self.cgroup_path(names[0]),
                      "-m", "multiport", "--dports", "1", "-j", "DROP")
            self._ipt("-F", self.chain)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or exc
            self.teardown()
            return f"cannot set up iptables/cgroups: {str(detail).strip()}"
        self.ready = True
        return None

    def _ipt(self, *args: str) -> None:
        subprocess.run(["iptables", "-w", "5", *args], check=True, capture_output=True, text=True, timeout=30)

    def cut(self, node: ClusterNode, peers: list[ClusterNode]) -> None:
        assert self.ready and self.cut_node is None, f"cut {node.name} while {self.cut_node} is cut"
        port = str(node.bind_port)
        self._ipt("-A", self.chain, "-p", "tcp", "--dport", port, "-j", "DROP")
        self._ipt("-A", self.chain, "-p", "tcp", "--sport", port, "-j", "DROP")
        self._ipt("-A", self.chain, "-p", "tcp", "-m", "cgroup", "--path", self.cgroup_path(node.name),
                  "-m", "multiport", "--dports", ",".join(str(p.bind_port) for p in peers), "-j", "DROP")
        self.cut_node = node.name

    def heal(self) -> None:
        if self.ready:
            self._ipt("-F", self.chain)
        self.cut_node = None

    def rules(self) -> str:
        try:
            return subprocess.run(["iptables", "-w", "5", "-S", self.chain], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            return repr(exc)

    def teardown(self) -> None:
        """Removes the jump, the chain and the cgroups; safe to call twice and after a partial setup."""
        if shutil.which("iptables"):
            if self.jumped:
                subprocess.run(["iptables", "-w", "5", "-D", "OUTPUT", "-o", "lo", "-j", self.chain],
                               capture_output=True, timeout=30)
                self.jumped = False
            subprocess.run(["iptables", "-w", "5", "-F", self.chain], capture_output=True, timeout=30)
            subprocess.run(["iptables", "-w", "5", "-X", self.chain], capture_output=True, timeout=30)
        self.ready = False
        self.cut_node = None
        if self.cg_dir is not None and self.cg_dir.exists():
            for child in sorted(self.cg_dir.iterdir()):
                if child.is_dir():
                    try:  # the killed processes leave their cgroup asynchronously
                        wait_until(lambda: not (child / "cgroup.procs").read_text().strip(), 10,
                                   f"{child} to be empty", interval=0.05)
                        child.rmdir()
                    except (OSError, AssertionError) as exc:
                        self.log(f"warning: could not remove cgroup {child}: {exc}")
            try:
                self.cg_dir.rmdir()
            except OSError as exc:
                self.log(f"warning: could not remove cgroup {self.cg_dir}: {exc}")


class ChaosNode(ClusterNode):
    """A cluster node whose process joins its own cgroup before it becomes the agent (same PID)."""

    procs_file: Path | None = None

    def args(self) -> list[str]:
        agent = super().args()
        if self.procs_file is None:
            return agent
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs_file), *agent]


# MARK: - the ledger of operations


@dataclass
class Op:
    seq: int
    writer: int
    instance: str
    service: str
    kind: str  # register | deregister
    node: str
    api: str  # native | consul
    port: int | None
    sent: float = 0.0
    done: float = 0.0
    outcome: str = "pending"  # then acked | rejected | refused | unknown
    detail: str = ""

    @property
    def tag(self) -> str:
        return str(self.seq)

    def describe(self, t0: float) -> str:
        what = f"register port={self.port} op={self.seq}" if self.kind == "register" else f"deregister (op {self.seq})"
        done = "still in flight" if self.outcome == "pending" else f"{self.outcome} at {self.done - t0:.2f}s"
        return (f"{what} via {self.api} at {self.node}, sent at {self.sent - t0:.2f}s, "
                f"{done}{(' (' + self.detail + ')') if self.detail else ''}")


@dataclass
class InstanceHistory:
    instance: str
    service: str
    ops: list[Op] = field(default_factory=list)
    retired: bool = False

    def acked_state(self) -> Op | None:
        """The last acknowledged operation: what every node must show (None: nothing acked)."""
        last = None
        for op in self.ops:
            if op.outcome == "acked":
                last = op
        return last

    def acceptable(self) -> list[Op | None]:
        """The states a node may show: the last acknowledged one, and, when the last operation's
        outcome is unknown, its effect too. None stands for "never registered"."""
        states: list[Op | None] = [self.acked_state()]
        if self.ops and self.ops[-1].outcome == "unknown":
            states.append(self.ops[-1])
        return states


def matches(state: Op | None, observed: dict | None) -> bool:
    if state is None or state.kind == "deregister":
        return observed is None
    return (
        observed is not None
        and observed.get("service_name") == state.service
        and observed.get("port") == state.port
        and (observed.get("metadata") or {}).get("op") == state.tag
    )


def show(observed: dict | None) -> str:
    if observed is None:
        return "absent"
    meta = observed.get("metadata") or {}
    return f"present with port={observed.get('port')} op={meta.get('op')} service={observed.get('service_name')}"


def expected_text(state: Op | None) -> str:
    if state is None:
        return "absent (no registration was ever acknowledged)"
    if state.kind == "deregister":
        return f"absent (deregistration op {state.seq} acknowledged by {state.node})"
    return f"present with port={state.port} op={state.seq} (acknowledged by {state.node})"


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.instances: dict[str, InstanceHistory] = {}
        self.seq = 0

    def next_seq(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq

    def add(self, op: Op) -> None:
        """Records `op` before it is sent: a server may apply it before its answer comes back,
        and a check meanwhile must know that it exists (as `pending`)."""
        with self.lock:
            self.instances.setdefault(op.instance, InstanceHistory(op.instance, op.service)).ops.append(op)

    def finish(self, op: Op, outcome: str, detail: str = "") -> None:
        with self.lock:
            op.detail = detail
            op.done = time.monotonic()
            op.outcome = outcome
            if outcome == "unknown":
                self.instances[op.instance].retired = True

    def all_ops(self) -> list[Op]:
        with self.lock:
            return [op for h in self.instances.values() for op in h.ops]


# MARK: - writers


def classify_error(exc: requests.RequestException) -> str:
    """`refused` when the request certainly never reached a server, else `unknown`."""
    if isinstance(exc, requests.ConnectTimeout):
        return "refused"
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        if isinstance(inner, (NewConnectionError, ConnectTimeoutError)):
            return "refused"
    return "unknown"


class Writer(threading.Thread):
    def __init__(self, index: int, rng: random.Random, nodes: list[ClusterNode], ledger: Ledger,
                 stop: threading.Event):
        super().__init__(name=f"writer-{index}", daemon=True)
        self.index = index
        self.rng = rng
        self.nodes = nodes
        self.ledger = ledger
        self.stop_event = stop
        self.live: dict[str, str] = {}  # instance -> service, as the writer last had it acknowledged
        self.dead: dict[str, str] = {}
        self.last_done: dict[str, float] = {}
        self.keys = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.step()
                time.sleep(self.rng.uniform(0.0, 0.02))  # pacing of the workload
        except BaseException as exc:  # noqa: BLE001 - reported by the run
            self.error = exc

    def step(self) -> None:
        """About 30 % new instances (until MAX_KEYS_PER_WRITER), 30-50 % updates, and the rest
        deregistrations or re-registrations, whichever keeps about 60 % of the keys live."""
        r = self.rng.random()
        can_create = self.keys < MAX_KEYS_PER_WRITER
        if can_create and (len(self.live) < 5 or r < 0.3):
            self.keys += 1
            iid = f"w{self.index}-{self.keys:04d}"
            self.do("register", iid, self.rng.choice(SERVICES))
        elif r < 0.6 and self.live:
            iid = self.rng.choice(sorted(self.live))
            self.do("register", iid, self.live[iid])
        elif self.dead and len(self.live) < 0.6 * (len(self.live) + len(self.dead)):
            iid = self.rng.choice(sorted(self.dead))
            self.do("register", iid, self.dead[iid])
        elif self.live:
            iid = self.rng.choice(sorted(self.live))
            self.do("deregister", iid, self.live[iid])

    def do(self, kind: str, iid: str, service: str) -> None:
        node = self.rng.choice(self.nodes)
        api = "consul" if self.rng.random() < 0.3 else "native"
        port = self.rng.randint(1024, 65535) if kind == "register" else None
        op = Op(self.ledger.next_seq(), self.index, iid, service, kind, node.name, api, port)
        wait = self.last_done.get(iid, 0.0) + MIN_GAP - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the stamp-order margin explained in the module docstring
        meta = {"op": op.tag, "writer": str(self.index)}
        if kind == "register" and api == "native":
            method, path, codes = "POST", "/registry/register", (200, 201)
            body = {"service_name": service, "instance_id": iid, "host": "127.0.0.1", "port": port, "metadata": meta}
        elif kind == "register":
            method, path, codes = "PUT", "/v1/agent/service/register", (200,)
            body = {"Name": service, "ID": iid, "Address": "127.0.0.1", "Port": port, "Meta": meta}
        elif api == "native":
            method, path, codes = "POST", "/registry/deregister", (200,)
            body = {"service_name": service, "instance_id": iid}
        else:
            method, path, codes = "PUT", f"/v1/agent/service/deregister/{iid}", (200,)
            body = None
        op.sent = time.monotonic()
        self.ledger.add(op)
        outcome, detail = "unknown", ""
        try:
            resp = requests.request(
                method, node.url(path), data=json.dumps(body) if body is not None else None,
                headers={"Content-Type": "application/json", "Connection": "close"}, timeout=REQUEST_TIMEOUT,
            )
            if resp.status_code in codes:
                outcome = "acked"
            elif 400 <= resp.status_code < 500:
                outcome, detail = "rejected", f"{resp.status_code} {resp.text[:120]}"  # not applied
            else:
                outcome, detail = "unknown", f"{resp.status_code} {resp.text[:120]}"
        except requests.RequestException as exc:
            outcome, detail = classify_error(exc), type(exc).__name__
        self.ledger.finish(op, outcome, detail)
        self.last_done[iid] = op.done
        if op.outcome == "unknown":  # never touched again: its final state is one of two
            self.live.pop(iid, None)
            self.dead.pop(iid, None)
        elif op.outcome == "acked":
            if kind == "register":
                self.live[iid] = service
                self.dead.pop(iid, None)
            else:
                self.dead[iid] = service
                self.live.pop(iid, None)


# MARK: - the run


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
        ]
        return "\n".join(lines)

    @staticmethod
    def _s(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}s"


def registry_of(node: ClusterNode) -> dict[str, dict]:
    resp = requests.get(node.url("/registry/services"), timeout=10, headers={"Connection": "close"})
    assert resp.status_code == 200, f"{node.name}: GET /registry/services -> {resp.status_code} {resp.text[:200]!r}"
    out: dict[str, dict] = {}
    for instances in resp.json()["services"].values():
        for inst in instances:
            out[inst["instance_id"]] = inst
    return out


def statuses_of(node: ClusterNode) -> dict[str, int]:
    resp = requests.get(node.url("/v1/agent/members"), timeout=5, headers={"Connection": "close"})
    assert resp.status_code == 200, f"{node.name}: /v1/agent/members -> {resp.status_code}"
    return {m["Name"]: int(m["Status"]) for m in resp.json()}


class ChaosRun:
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

        stop = self.writers_stop
        fault_stop = self.faults_stop
        writers = [Writer(i, random.Random(self.seed * 1000 + i), cluster.nodes, self.ledger, stop)
                   for i in range(WRITERS)]
        monitors: list[threading.Thread] = []
        faulter = threading.Thread(target=self._faults, args=(faults, fault_stop, monitors), name="faults", daemon=True)
        self.phase_start = time.monotonic()
        for w in writers:
            w.start()
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

    def check_durable(self, node: ClusterNode) -> None:
        """Right after a restart: `node` holds every write it acknowledged before it was killed,
        or a later version of that instance. (What peers send it can only move an instance
        forward, so this is sound while writes go on; and unlike the final check it cannot be
        masked by anti-entropy refilling what the node itself lost.)

        kill -9 leaves the page cache alone, so this proves the write reached the kernel before
        the answer, not that it was fsync'd: that would need a power-loss model (the simulator)."""
        killed = self.killed_at.get(node.name)
        if killed is None:
            return
        try:  # the registry first, the ledger after: every op it may show is in the ledger by then
            reg = registry_of(node)
        except Exception as exc:  # noqa: BLE001 - reported as a failure: it answered /health
            self.fail_later(f"{node.name}: cannot read its registry right after its restart: {exc!r}")
            return
        with self.ledger.lock:
            histories = [(h.instance, list(h.ops)) for h in self.ledger.instances.values()]
        checked = 0
        for iid, ops in histories:
            mine = [i for i, op in enumerate(ops) if op.node == node.name and op.outcome == "acked" and op.done <= killed]
            if not mine:
                continue
            first = mine[-1]
            allowed = [ops[first]] + [op for op in ops[first + 1:] if op.outcome in ("acked", "unknown", "pending")]
            checked += 1
            if not any(matches(op, reg.get(iid)) for op in allowed):
                self.report.lost_at_restart += 1
                self.fail_later(
                    f"{node.name} lost a write it acknowledged before its kill -9: instance {iid} is "
                    f"{show(reg.get(iid))} right after the restart, expected {expected_text(ops[first])}"
                    + (f" or a later version ({len(allowed) - 1} later op(s))" if len(allowed) > 1 else "")
                    + "\n    " + "\n    ".join(op.describe(self.t0) for op in ops[max(0, first - 2):]))
        self.report.durability_checked += checked

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

    def _watch_isolation(self, node: ClusterNode, stop: threading.Event) -> None:
        """Verifies a cut, until it is healed or the faults stop.

        1. Every other running node comes to see `node` failed (a failure if not within
           ISOLATION_TIMEOUT).
        2. Then nothing crosses the cut: an instance written at `node` reaches no other node, and
           one written at another node does not reach `node`, for PROBE_WINDOW seconds (normal
           propagation takes well under a second). Both must arrive after the heal.
        3. `node` comes to see no other node alive: measured, not required, and only on the
           process that was cut (a cut-off node without confirmations from peers is slow to
           declare them failed, which is the point of Lifeguard-style suspicion).
        """
        assert self.cluster is not None and self.net is not None
        started = time.monotonic()
        pid = node.proc.pid if node.running else None
        outside = inside = None  # seconds until each view held
        probed = False
        views: dict[str, Any] = {}

        def cut_active() -> bool:
            return self.net.cut_node == node.name and not stop.is_set()

        while cut_active():
            same_process = node.running and node.proc.pid == pid
            views = {}
            peers_done = True
            answered = 0  # other nodes that answered: one restarting right now is skipped
            for o in self.cluster.nodes:
                if not o.running or (o is node and (inside is not None or not same_process)):
                    continue
                try:
                    st = statuses_of(o)
                except Exception as exc:  # noqa: BLE001 - a node that is restarting
                    views[o.name] = type(exc).__name__
                    continue
                if o is node:
                    views[o.name] = {k: STATUS_NAMES.get(v, v) for k, v in st.items() if k != node.name}
                    if all(v != ALIVE for k, v in st.items() if k != node.name):
                        inside = time.monotonic() - started
                        self.report.isolated_view_seconds.append(inside)
                        self.log(f"{node.name} sees every other node as not alive after {inside:.2f}s")
                else:
                    views[o.name] = STATUS_NAMES.get(st.get(node.name), st.get(node.name))
                    # None: a node restarted since the cut may never have heard of it.
                    peers_done = peers_done and st.get(node.name) in (FAILED, None)
                    answered += 1
            if not cut_active():
                break
            if peers_done and answered and outside is None:
                outside = time.monotonic() - started
                self.report.isolation_seconds.append(outside)
                self.log(f"every other node sees {node.name} failed after {outside:.2f}s")
            if outside is not None and not probed:
                probed = True
                self._probe_cut(node, cut_active)
            if outside is not None and inside is not None:
                return
            if outside is None and time.monotonic() - started > ISOLATION_TIMEOUT:
                self.fail_later(f"the cut-off of {node.name} did not show within {ISOLATION_TIMEOUT:.0f}s: "
                                f"the other nodes see it as {views}; rules:\n{self.net.rules()}")
                return
            time.sleep(0.25)
        if outside is None:
            self.log(f"note: the cut of {node.name} ended before every other node saw it failed: {views}")
        elif inside is None:
            self.log(f"note: {node.name} still saw some node alive when its cut ended "
                     f"({time.monotonic() - started:.1f}s): {views.get(node.name)}")

    def _probe_cut(self, node: ClusterNode, cut_active: Callable[[], bool]) -> None:
        assert self.cluster is not None
        others = [o for o in self.cluster.nodes if o is not node and o.running]
        if not others or not node.running:
            return
        self.probe_count += 1
        inside_id = f"chaos-probe-{self.probe_count}-in-{node.name}"
        other = others[self.rng.randrange(len(others))]
        outside_id = f"chaos-probe-{self.probe_count}-at-{other.name}"
        for at, iid in ((node, inside_id), (other, outside_id)):
            self.maybe_probes.add(iid)
            try:
                resp = requests.post(at.url("/registry/register"), timeout=10, json={
                    "service_name": "chaos-probe", "instance_id": iid, "host": "127.0.0.1", "port": 1})
            except requests.RequestException as exc:
                self.log(f"note: probe {iid} at {at.name} not written ({type(exc).__name__}); no probe this cut")
                return
            if resp.status_code not in (200, 201):
                self.fail_later(f"probe {iid} at {at.name} during the cut: {resp.status_code} {resp.text[:200]!r}")
                return
            self.probes.add(iid)
        sent = time.monotonic()
        while time.monotonic() - sent < PROBE_WINDOW and cut_active():
            crossed = []
            for o in self.cluster.nodes:
                if not o.running:
                    continue
                iid = outside_id if o is node else inside_id
                if o is other:
                    continue
                try:
                    if requests.get(o.url(f"/registry/instance/{iid}"), timeout=5).status_code == 200:
                        crossed.append(f"{iid} reached {o.name}")
                except requests.RequestException:
                    pass  # restarting
            if crossed and cut_active():
                self.fail_later(f"writes crossed the cut of {node.name} ({time.monotonic() - sent:.2f}s after "
                                f"they were written): {crossed}; rules:\n{self.net.rules()}")
                return
            time.sleep(0.2)
        if cut_active():
            self.report.cut_probes += 1
            self.log(f"nothing crossed the cut of {node.name} in {PROBE_WINDOW:.0f}s "
                     f"({inside_id} at {node.name}, {outside_id} at {other.name})")

    def _watch_rejoin(self, node: ClusterNode, stop: threading.Event) -> None:
        """Measures how long after a mid-run heal every running node sees `node` alive again."""
        assert self.cluster is not None
        started = time.monotonic()
        while time.monotonic() - started < 30 and not stop.is_set():
            try:
                ok = all(statuses_of(o).get(node.name) == ALIVE and
                         (o is not node or all(v == ALIVE for k, v in statuses_of(o).items()
                                               if self.cluster[k].running))
                         for o in self.cluster.nodes if o.running)
            except Exception:  # noqa: BLE001 - a node restarting
                ok = False
            if ok:
                took = time.monotonic() - started
                self.report.rejoin_seconds.append(took)
                self.log(f"{node.name} alive everywhere {took:.2f}s after the heal")
                return
            time.sleep(0.25)

    # -- the end

    def tally(self) -> None:
        ops = self.ledger.all_ops()
        r = self.report
        r.ops = len(ops)
        r.acked = sum(op.outcome == "acked" for op in ops)
        r.acked_registers = sum(op.outcome == "acked" and op.kind == "register" for op in ops)
        r.acked_deregisters = sum(op.outcome == "acked" and op.kind == "deregister" for op in ops)
        r.rejected = sum(op.outcome == "rejected" for op in ops)
        r.refused = sum(op.outcome == "refused" for op in ops)
        r.unknown = sum(op.outcome == "unknown" for op in ops)
        r.instances = len(self.ledger.instances)
        odd = [op for op in ops if op.outcome == "rejected" and not (op.kind == "deregister" and op.detail.startswith("404"))]
        if odd:
            self.fail_later("unexpected 4xx answers: " + "; ".join(f"{op.instance}: {op.describe(self.t0)}" for op in odd[:5]))

    def wait_converged(self, healed: float) -> None:
        assert self.cluster is not None
        nodes = self.cluster.nodes
        last: dict[str, Any] = {}

        def identical():
            regs = {n.name: registry_of(n) for n in nodes}
            last.clear()
            last.update(regs)
            first = regs[nodes[0].name]
            return all(r == first for r in regs.values())

        try:
            wait_until(identical, CONVERGE_TIMEOUT, "identical registries", interval=0.1)
        except AssertionError as exc:
            raise ChaosFailure(f"the registries did not converge within {CONVERGE_TIMEOUT:.0f}s of the heal: "
                               f"{self.differences(last) or exc}; {self.replay_hint()}") from None
        self.report.converge_seconds = time.monotonic() - healed
        self.log(f"registries identical on all {len(nodes)} nodes {self.report.converge_seconds:.2f}s after the heal "
                 f"({len(last[nodes[0].name])} instances)")

    def differences(self, regs: dict[str, dict]) -> str:
        if not regs:
            return ""
        names = list(regs)
        ref = names[0]
        out = []
        for name in names[1:]:
            a, b = regs[ref], regs[name]
            only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
            diff = sorted(k for k in set(a) & set(b) if a[k] != b[k])
            if only_a or only_b or diff:
                out.append(f"{name} vs {ref}: {len(only_b)} only at {name} {only_b[:5]}, {len(only_a)} only at {ref} "
                           f"{only_a[:5]}, {len(diff)} differ " +
                           ", ".join(f"{k}: {show(a[k])} vs {show(b[k])}" for k in diff[:3]))
        return "; ".join(out) + f"; sizes {({n: len(r) for n, r in regs.items()})}"

    def wait_members(self, healed: float) -> None:
        assert self.cluster is not None
        names = set(self.cluster.names)
        last: dict[str, Any] = {}

        def all_alive():
            last.clear()
            for o in self.cluster.nodes:
                last[o.name] = statuses_of(o)
            return all(all(v.get(n) == ALIVE for n in names) for v in last.values())

        try:
            wait_until(all_alive, CONVERGE_TIMEOUT, "every node to see every node alive", interval=0.1)
        except AssertionError:
            readable = {o: {k: STATUS_NAMES.get(v, v) for k, v in st.items()} for o, st in last.items()}
            raise ChaosFailure(f"membership did not converge within {CONVERGE_TIMEOUT:.0f}s of the heal: "
                               f"{readable}; {self.replay_hint()}") from None
        self.report.members_seconds = time.monotonic() - healed
        self.log(f"every node sees every node alive {self.report.members_seconds:.2f}s after the heal")

    def check_stable(self) -> None:
        """A marker written at one node reaches all: replication has run again since convergence,
        and the registries must still be identical (nothing resurrected by a later round)."""
        assert self.cluster is not None
        nodes = self.cluster.nodes
        at = nodes[self.rng.randrange(len(nodes))]
        resp = requests.post(at.url("/registry/register"), json={
            "service_name": "chaos-marker", "instance_id": "chaos-marker", "host": "127.0.0.1", "port": 1},
            timeout=10)
        assert resp.status_code in (200, 201), f"marker at {at.name}: {resp.status_code} {resp.text[:200]!r}"
        wait_until(lambda: all("chaos-marker" in registry_of(n) for n in nodes), 30,
                   f"the marker written at {at.name} to reach every node")
        regs = {n.name: registry_of(n) for n in nodes}
        first = regs[nodes[0].name]
        if not all(r == first for r in regs.values()):
            raise ChaosFailure(f"the registries diverged again after converging: {self.differences(regs)}; "
                               f"{self.replay_hint()}")
        self.final = {n: {k: v for k, v in r.items() if k != "chaos-marker"} for n, r in regs.items()}

    def check_ledger(self) -> None:
        """Every node against the ledger: see the module docstring."""
        assert self.cluster is not None
        problems: list[str] = []
        lost = resurrected = phantom = 0
        with self.ledger.lock:
            histories = list(self.ledger.instances.values())
        known = {h.instance for h in histories} | self.probes | self.maybe_probes
        for name, reg in self.final.items():
            for iid in sorted(self.probes - set(reg)):
                lost += 1
                problems.append(f"lost acknowledged write: {name}: probe {iid}, written during a cut, is absent")
            for iid in sorted(set(reg) - known):
                phantom += 1
                problems.append(f"{name}: instance {iid} is {show(reg[iid])}, but no writer ever wrote it")
        for h in histories:
            states = h.acceptable()
            acked = h.acked_state()
            bad_nodes = [(name, reg.get(h.instance)) for name, reg in self.final.items()
                         if not any(matches(s, reg.get(h.instance)) for s in states)]
            if not bad_nodes:
                continue
            if acked is None:
                phantom += 1
                kind = "phantom (never acknowledged)"
            elif acked.kind == "deregister":
                resurrected += 1
                kind = "resurrected after an acknowledged deregistration"
            else:
                lost += 1
                kind = "lost acknowledged write"
            expected = " or ".join(expected_text(s) for s in states)
            where = ", ".join(f"{n}: {show(obs)}" for n, obs in bad_nodes)
            recent = "\n      ".join(op.describe(self.t0) for op in h.ops[-4:])
            problems.append(f"{kind}: instance {h.instance} (service {h.service}) should be {expected}; "
                            f"but at {where}\n    last operations:\n      {recent}")
        self.report.lost, self.report.resurrected, self.report.phantom = lost, resurrected, phantom
        self.log(f"ledger check: {len(histories)} instances on {len(self.final)} nodes; lost {lost}, "
                 f"resurrected {resurrected}, phantoms {phantom}")
        if problems:
            raise ChaosFailure(
                f"{len(problems)} instance(s) violate the ledger ({lost} lost, {resurrected} resurrected, "
                f"{phantom} phantom); {self.replay_hint()}:\n  " + "\n  ".join(problems[:20]))

    def teardown(self) -> None:
        """Kills every process this run started (by PID), then removes its iptables rules and cgroups."""
        self.faults_stop.set()  # when the run ends early: no thread goes on with faults or writes
        self.writers_stop.set()
        if self.cluster is not None:
            self.cluster.cleanup()
        if self.net is not None:
            self.net.teardown()


# MARK: - standalone


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
