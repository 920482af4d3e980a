"""Several `roster` nodes over mutual TLS: certificates made by the real binary, cluster nodes,
a whole cluster that joins and converges, and waits on member status.

The `cluster` fixture lives in conftest.py, which re-exports every name here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from e2e_process import Node, free_ports, run_cli, wait_until

# MARK: - clusters: several nodes over mutual TLS


CLUSTER_JOIN_TIMEOUT = float(os.environ.get("ROSTER_JOIN_TIMEOUT", "20"))

# Consul's member status integers (SPEC §2b).
ALIVE, LEAVING, LEFT, FAILED = 1, 2, 3, 4
STATUS_NAMES = {ALIVE: "alive", LEAVING: "leaving", LEFT: "left", FAILED: "failed"}


class CertDir:
    """A CA and node certificates made by the real binary (`roster tls ca/cert create`)."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._run("tls", "ca", "create", "--dir", str(path))

    def _run(self, *args: str) -> None:
        result = run_cli(*args, timeout=30)
        assert result.returncode == 0, f"roster {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}"

    @property
    def ca(self) -> Path:
        return self.path / "ca.pem"

    def issue(self, node: str) -> tuple[Path, Path]:
        """(cert, key) for `node`, made on first use."""
        cert, key = self.path / f"{node}.pem", self.path / f"{node}-key.pem"
        if not cert.exists():
            self._run("tls", "cert", "create", "--dir", str(self.path), "--node", node)
        assert cert.exists() and key.exists(), f"roster tls cert create did not write {cert} and {key}"
        return cert, key


class ClusterNode(Node):
    """A node with mutual TLS from `certs`, advertising its bind address and joining `join`."""

    def __init__(self, tmp_path: Path, name: str, certs: CertDir, ports: list[int], extra_args: list[str] | None = None):
        super().__init__(tmp_path, name=name, extra_args=extra_args)
        self.http_port, self.dns_port, self.bind_port = ports
        self.certs = certs
        self.cert, self.key = certs.issue(name)
        self.join: list[str] = []

    @property
    def bind_addr(self) -> str:
        return f"127.0.0.1:{self.bind_port}"

    def args(self) -> list[str]:
        joins = [arg for seed in self.join for arg in ("--join", seed)]
        return [
            str(self.binary),
            "agent",
            "--node-name", self.name,
            "--data-dir", str(self.data_dir),
            "--http", self.http_addr,
            "--dns", f"127.0.0.1:{self.dns_port}",
            "--bind", self.bind_addr,
            "--advertise", self.bind_addr,
            *joins,
            "--tls-ca", str(self.certs.ca),
            "--tls-cert", str(self.cert),
            "--tls-key", str(self.key),
            "--log-level", "debug",
            *self.extra_args,
        ]

    def members(self) -> dict[str, dict]:
        """Name → member entry of GET /v1/agent/members at this node."""
        resp = self.get("/v1/agent/members", timeout=5)
        assert resp.status_code == 200, f"{self.name}: GET /v1/agent/members -> {resp.status_code} {resp.text[:300]!r}"
        body = resp.json()
        assert isinstance(body, list), f"{self.name}: members is not a list: {body!r}"
        return {m["Name"]: m for m in body}

    def statuses(self) -> dict[str, int]:
        """Name → Consul status integer, as this node sees its cluster."""
        return {name: int(m["Status"]) for name, m in self.members().items()}

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class Cluster:
    """`size` nodes n1..nN on free loopback ports, mutual TLS from one CA, each joining all the others."""

    def __init__(
        self, tmp_path: Path, tracked: list, size: int = 3, extra_args: list[str] | None = None,
        node_class: type[ClusterNode] = ClusterNode, ports: list[int] | None = None,
    ):
        """`node_class` and `ports` (3 per node: HTTP, DNS, peer) let a test use its own kind of
        node or ports it chose itself (the chaos test picks ports outside the ephemeral range)."""
        self.tmp_path = tmp_path
        self.tracked = tracked  # every node made here, for the failure report and for teardown
        self.certs = CertDir(tmp_path / "certs")
        ports = list(ports) if ports is not None else free_ports(3 * size)
        assert len(ports) == 3 * size, f"{len(ports)} ports given for {size} nodes"
        self.nodes: list[ClusterNode] = [
            self._track(node_class(tmp_path, f"n{i + 1}", self.certs, ports[3 * i:3 * i + 3], extra_args=extra_args))
            for i in range(size)
        ]
        for n in self.nodes:
            n.join = [other.bind_addr for other in self.nodes if other is not n]

    def _track(self, node: ClusterNode) -> ClusterNode:
        self.tracked.append(node)
        return node

    def __getitem__(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == name)

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def start(self, timeout: float = CLUSTER_JOIN_TIMEOUT) -> "Cluster":
        for n in self.nodes:
            n.launch()
        for n in self.nodes:
            n.wait_ready()
        self.wait_all_alive(timeout)
        return self

    def wait_all_alive(self, timeout: float = CLUSTER_JOIN_TIMEOUT, nodes: list[ClusterNode] | None = None) -> None:
        """Until every running node lists every node of the cluster as alive."""
        observers = [n for n in (nodes or self.nodes) if n.running]
        names = set(self.names)

        def converged():
            views = {o.name: o.statuses() for o in observers}
            if all(all(view.get(name) == ALIVE for name in names) for view in views.values()):
                return views
            return False

        try:
            wait_until(converged, timeout, f"every node to see {sorted(names)} alive", interval=0.1)
        except AssertionError:
            views = {}
            for o in observers:
                try:
                    views[o.name] = {k: STATUS_NAMES.get(v, v) for k, v in o.statuses().items()}
                except Exception as exc:  # noqa: BLE001 - reported
                    views[o.name] = repr(exc)
            raise AssertionError(
                f"the cluster did not form within {timeout:.0f}s: members as each node sees them: {views}"
            ) from None

    def add_node(self, name: str, certs: CertDir, join: list[str], extra_args: list[str] | None = None) -> ClusterNode:
        """Another (unstarted) node on fresh ports, e.g. one with a certificate from another CA."""
        node = ClusterNode(self.tmp_path, name, certs, free_ports(3), extra_args=extra_args)
        node.join = list(join)
        return self._track(node)

    def cleanup(self) -> None:
        for n in self.tracked:
            n.cleanup()


def wait_member_status(
    observers: list[ClusterNode], name: str, wanted: set[int], timeout: float
) -> tuple[float, dict[str, list[int]]]:
    """Polls until every observer reports `name` with a status in `wanted`.

    Returns (seconds taken, every status each observer reported on the way, in order and without
    repeats), so that a caller can also assert what was never seen (e.g. `failed` on a graceful leave).
    """
    started = time.monotonic()
    seen: dict[str, list[int]] = {o.name: [] for o in observers}

    def check():
        done = True
        for o in observers:
            status = o.statuses().get(name)
            if status is not None and (not seen[o.name] or seen[o.name][-1] != status):
                seen[o.name].append(status)
            done = done and status in wanted
        return done

    try:
        wait_until(check, timeout, f"{name} to be {sorted(wanted)} at {[o.name for o in observers]}", interval=0.05)
    except AssertionError as exc:
        readable = {k: [STATUS_NAMES.get(s, s) for s in v] for k, v in seen.items()}
        raise AssertionError(f"{exc}; statuses seen on the way: {readable}") from None
    return time.monotonic() - started, seen
