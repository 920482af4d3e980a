"""The faults of a chaos run: the seeded schedule of kills, restarts, cuts and heals, the stable
ports that let a killed node restart where it was, and the iptables cut-off.

Cutting a node off: every node runs in a cgroup of its own (a `sh` wrapper joins it and then
`exec`s the agent, so the PID is the agent's). An iptables chain of this run, jumped to from
OUTPUT on `lo`, then drops (1) TCP to the node's peer port, (2) TCP from its peer port, and
(3) TCP from the node's cgroup to the other nodes' peer ports: its own outbound dials use
ephemeral source ports, so a rule on its port alone would not stop them. HTTP is not touched:
the cut-off node keeps taking writes.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chaos_common import ClusterNode, wait_until

MAX_DOWN = 2  # at most this many nodes killed at once (the cut-off node is not counted)


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
