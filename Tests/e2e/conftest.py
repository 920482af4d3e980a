"""End-to-end test support: real `roster` processes on loopback.

Every node is started from the built binary (env ROSTER_BIN, default `.build/debug/roster`), on
free loopback ports, with its log in the test's tmp_path. Nothing here sleeps to synchronise:
`wait_until` polls a condition against a deadline and fails with what it last saw.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = float(os.environ.get("ROSTER_START_TIMEOUT", "30"))
STOP_TIMEOUT = 5.0  # SPEC §1: a graceful leave exits 0 within 5 s.
LOG_TAIL_LINES = 60


# MARK: - helpers


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    message: str = "condition",
    interval: float = 0.05,
) -> Any:
    """Polls `predicate` until it returns something truthy; returns that value.

    Exceptions raised by the predicate count as "not yet" and the last one is reported on timeout,
    so a predicate may freely do HTTP requests against a node that is still starting.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - reported below
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {message}; last: {last!r}")
        time.sleep(interval)


def free_ports(count: int) -> list[int]:
    """Returns `count` distinct loopback ports that are free for both TCP and UDP right now."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                tcp.close()
                udp.close()
                continue
            held += [tcp, udp]
            ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


def roster_binary() -> Path:
    path = Path(os.environ.get("ROSTER_BIN", ".build/debug/roster"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def error_of(resp: requests.Response) -> dict:
    """The `{"error": {"field", "message"}}` body of a 4xx answer, asserted to be well formed."""
    assert 400 <= resp.status_code < 500, f"expected a 4xx, got {resp.status_code}: {resp.text[:300]!r}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"4xx body is not JSON: {resp.status_code} {resp.text[:300]!r}") from None
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"no error object: {body!r}"
    err = body["error"]
    assert isinstance(err.get("field"), str) and err["field"], f"error.field missing or empty: {body!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"error.message missing or empty: {body!r}"
    return err


# MARK: - Node


class Node:
    """One `roster agent` process with its own ports, data dir and log file."""

    def __init__(self, tmp_path: Path, name: str = "n1", extra_args: list[str] | None = None):
        self.name = name
        self.binary = roster_binary()
        self.http_port, self.dns_port, self.bind_port = free_ports(3)
        self.data_dir = tmp_path / f"data-{name}"
        self.log_path = tmp_path / f"{name}.log"
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.session = requests.Session()

    # -- addresses

    @property
    def http_addr(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.http_addr}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def args(self) -> list[str]:
        return [
            str(self.binary),
            "agent",
            "--node-name", self.name,
            "--data-dir", str(self.data_dir),
            "--http", self.http_addr,
            "--dns", f"127.0.0.1:{self.dns_port}",
            "--bind", f"127.0.0.1:{self.bind_port}",
            "--insecure-plaintext",
            "--log-level", "debug",
            *self.extra_args,
        ]

    # -- lifecycle

    def start(self, timeout: float = START_TIMEOUT) -> "Node":
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> "Node":
        """Starts the process without waiting for it (see `wait_ready`), so that several nodes boot at once."""
        assert self.proc is None or self.proc.poll() is not None, "node already running"
        if not self.binary.exists():
            pytest.fail(f"roster binary not found at {self.binary}; run `swift build` or set ROSTER_BIN")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.args())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.args(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=REPO_ROOT,
                start_new_session=True,  # a Ctrl-C on the test run must not reach it first
            )
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            code = self.proc.poll() if self.proc else None
            if code is not None:
                pytest.fail(f"node {self.name} exited with {code} before /health answered\n{self.log_tail()}")
            try:
                resp = requests.get(self.url("/health"), timeout=1)
                if resp.status_code == 200:
                    resp.json()  # contract: JSON once ready
                    return
                last = f"{resp.status_code} {resp.text[:200]!r}"
            except (requests.RequestException, ValueError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                pytest.fail(f"node {self.name} not ready after {timeout}s (last: {last!r})\n{self.log_tail()}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_and_wait(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> tuple[int, float]:
        """Sends `sig` and waits; returns (exit code, seconds taken). Kills it if it overstays."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(
                f"node {self.name} did not exit within {timeout}s of signal {sig}\n{self.log_tail()}"
            )
        return code, time.monotonic() - started

    def stop(self, sig: int = signal.SIGTERM) -> float:
        """Graceful stop: asserts exit code 0 within 5 s. Returns the seconds it took."""
        code, took = self.signal_and_wait(sig)
        assert code == 0, f"node {self.name} exited with {code} after signal {sig}\n{self.log_tail()}"
        return took

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL, by the PID we started
        self.proc.wait(timeout=10)

    def restart(self) -> "Node":
        if self.running:
            self.stop()
        self.session.close()
        self.session = requests.Session()
        return self.start()

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.session.close()

    def log_tail(self) -> str:
        return f"--- last lines of {self.log_path} ---\n{tail(self.log_path)}"

    # -- HTTP

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 10)
        return self.session.get(self.url(path), **kw)

    def post(self, path: str, body: Any = None, **kw) -> requests.Response:
        kw.setdefault("timeout", 10)
        if body is not None and "data" not in kw:
            kw["data"] = json.dumps(body)
            kw.setdefault("headers", {"Content-Type": "application/json"})
        return self.session.post(self.url(path), **kw)

    def put(self, path: str, body: Any = None, **kw) -> requests.Response:
        kw.setdefault("timeout", 10)
        if body is not None and "data" not in kw:
            kw["data"] = json.dumps(body)
            kw.setdefault("headers", {"Content-Type": "application/json"})
        return self.session.put(self.url(path), **kw)

    def consul(self):
        import consul  # py-consul

        return consul.Consul(host="127.0.0.1", port=self.http_port)

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Runs `roster ARGS...` (e.g. `services --http ...`) and returns its completed process."""
        return run_cli(*args, timeout=timeout)


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Runs the binary once; on timeout `subprocess.run` kills the child it started."""
    binary = roster_binary()
    if not binary.exists():
        pytest.fail(f"roster binary not found at {binary}; run `swift build` or set ROSTER_BIN")
    return subprocess.run(
        [str(binary), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )


# MARK: - fixtures and reporting


def tracked_nodes(request) -> list:
    """The nodes whose logs a failed test's report shows (see pytest_runtest_makereport)."""
    if not hasattr(request.node, "_roster_nodes"):
        request.node._roster_nodes = []
    return request.node._roster_nodes


@pytest.fixture
def node_factory(request, tmp_path):
    """Makes (unstarted) nodes; every node made is killed by its own PID when the test ends."""
    nodes = tracked_nodes(request)

    def make(name: str = "n1", extra_args: list[str] | None = None) -> Node:
        n = Node(tmp_path, name=name, extra_args=extra_args)
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        n.cleanup()


@pytest.fixture
def node(node_factory) -> Node:
    """A started single node named n1."""
    return node_factory("n1").start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the tail of every node's log to a failed test's report."""
    report = yield
    if report.failed:
        for n in getattr(item, "_roster_nodes", []):
            report.sections.append((f"roster log {n.name}", n.log_tail()))
    return report


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


@pytest.fixture
def cluster(request, tmp_path) -> Cluster:
    """A started 3-node mutual-TLS cluster (n1, n2, n3) where every node sees all three alive.

    Function-scoped: each test gets fresh nodes, certificates and data dirs. Every process is
    killed by its own PID at the end.
    """
    c = Cluster(tmp_path, tracked_nodes(request), size=3)
    try:
        c.start()
        yield c
    finally:
        c.cleanup()
