"""Health checking end to end: real HTTP and TCP targets, real nodes, py-consul.

What users try (issue 4): an HTTP check against `python3 -m http.server` that follows its target
on every node; TTL checks that expire, are passed at any node and deregister the instance; the
owner of a check killed with its target down, and a survivor taking the check over; a node cut
off from most of the cluster pausing expiry until it reconnects.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import consul
import pytest

from conftest import free_ports, wait_until

# A check's interval plus its timeout, plus propagation and the monitor's reconcile period.
FOLLOW_DEADLINE = 8.0


class HTTPTarget:
    """`python3 -m http.server` on a fixed loopback port, which can be stopped and started again."""

    def __init__(self, port: int):
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "HTTPTarget":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._accepts, 10, f"the HTTP target on port {self.port} to listen")
        return self

    def _accepts(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def http_target():
    target = HTTPTarget(free_ports(1)[0])
    try:
        yield target.start()
    finally:
        target.stop()


def check_status(node, service: str, iid: str) -> str | None:
    """The aggregate check status of `iid` at `node` through the Consul health API, or None."""
    for entry in node.get(f"/v1/health/service/{service}").json():
        if entry["Service"]["ID"] == iid:
            statuses = [c["Status"] for c in entry["Checks"] if c["CheckID"] != "serfHealth"]
            for worst in ("critical", "warning", "passing"):
                if worst in statuses:
                    return worst
    return None


def passing_ids(node, service: str) -> set[str]:
    return {e["Service"]["ID"] for e in node.get(f"/v1/health/service/{service}", params={"passing": "1"}).json()}


def wait_everywhere(nodes, service: str, iid: str, status: str | None, timeout: float) -> float:
    """Seconds until every node reports `iid`'s check status as `status` (None: the instance is gone)."""
    started = time.monotonic()
    wait_until(
        lambda: all(check_status(n, service, iid) == status for n in nodes), timeout,
        f"{iid} to be {status or 'gone'} at {[n.name for n in nodes]}",
        interval=0.05)
    return time.monotonic() - started


# MARK: - HTTP and TCP checks


def test_an_http_check_follows_its_target_on_every_node(cluster, http_target):
    nodes = [cluster["n1"], cluster["n2"], cluster["n3"]]
    agent = nodes[0].consul().agent
    agent.service.register(
        "web", service_id="web-1", port=http_target.port,
        check=consul.Check.http(http_target.url, interval="1s", timeout="1s"))
    wait_everywhere(nodes, "web", "web-1", "passing", FOLLOW_DEADLINE)
    assert all("web-1" in passing_ids(n, "web") for n in nodes)

    http_target.stop()
    took = wait_everywhere(nodes, "web", "web-1", "critical", FOLLOW_DEADLINE)
    print(f"target down → critical on every node: {took:.2f}s")
    for n in nodes:
        assert "web-1" not in passing_ids(n, "web"), f"?passing at {n.name} still lists the critical instance"
        shown = n.get("/registry/instance/web-1").json()
        assert shown["status"] == "UNHEALTHY", f"{n.name}: the native status follows the check: {shown}"
        assert "HTTP GET" in shown["checks"][0]["output"], shown["checks"][0]

    http_target.start()
    wait_everywhere(nodes, "web", "web-1", "passing", FOLLOW_DEADLINE)
    assert all(n.get("/registry/instance/web-1").json()["status"] == "RUNNING" for n in nodes)


def test_a_tcp_check_passes_while_the_port_listens(node):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        node.consul().agent.service.register(
            "db", service_id="db-1", port=port, check=consul.Check.tcp("127.0.0.1", port, interval="1s", timeout="1s"))
        wait_everywhere([node], "db", "db-1", "passing", FOLLOW_DEADLINE)
    finally:
        listener.close()
    wait_everywhere([node], "db", "db-1", "critical", FOLLOW_DEADLINE)
    output = node.get("/registry/instance/db-1").json()["checks"][0]["output"]
    assert output.startswith(f"TCP connect 127.0.0.1:{port}"), output


def test_a_check_that_hangs_is_cut_off_at_its_timeout(node):
    # Accepts connections but never answers: only the timeout can end the probe.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    port = silent.getsockname()[1]
    try:
        node.consul().agent.service.register(
            "slow", service_id="slow-1", port=port,
            check=consul.Check.http(f"http://127.0.0.1:{port}/", interval="1s", timeout="1s"))
        node.put("/v1/agent/check/pass/service:slow-1")  # start passing, so only the probe can fail it
        wait_everywhere([node], "slow", "slow-1", "critical", FOLLOW_DEADLINE)
        output = node.get("/registry/instance/slow-1").json()["checks"][0]["output"]
        assert "timed out after 1s" in output, output
    finally:
        silent.close()


# MARK: - TTL checks


def test_ttl_checks_expire_count_a_pass_at_any_node_and_deregister(cluster):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    nodes = [n1, n2, n3]
    agent = n1.consul().agent
    agent.service.register("worker", service_id="w-1", check=consul.Check.ttl("2s"))
    n1.consul().agent.check.ttl_pass("service:w-1")
    wait_everywhere(nodes, "worker", "w-1", "passing", 3)
    # Never renewed: critical everywhere once 2 s have passed at its owner, n1.
    wait_everywhere(nodes, "worker", "w-1", "critical", FOLLOW_DEADLINE)

    # A pass sent to n3 counts; and passes at n2 keep it passing beyond its TTL, because
    # renewals reach the owner in batches.
    n3.consul().agent.check.ttl_pass("service:w-1", notes="from n3")
    wait_everywhere(nodes, "worker", "w-1", "passing", 3)
    until = time.monotonic() + 4
    while time.monotonic() < until:  # the workload: a client heartbeating every 0.5 s for 4 s
        n2.consul().agent.check.ttl_pass("service:w-1")
        assert all(check_status(n, "worker", "w-1") == "passing" for n in nodes), "renewed at n2, yet expired"
        time.sleep(0.5)

    # With DeregisterCriticalServiceAfter it disappears from every node.
    agent.service.register(
        "worker", service_id="w-2", check=consul.Check.ttl("2s") | {"DeregisterCriticalServiceAfter": "3s"})
    wait_everywhere(nodes, "worker", "w-2", "critical", 3)
    took = wait_everywhere(nodes, "worker", "w-2", None, 10)
    print(f"deregistered on every node {took:.2f}s after showing critical")


# MARK: - ownership


def test_a_survivor_takes_over_the_checks_of_a_killed_owner(cluster, http_target):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    n2.consul().agent.service.register(
        "web", service_id="web-9", port=http_target.port,
        check=consul.Check.http(http_target.url, interval="1s", timeout="1s"))
    wait_everywhere([n1, n2, n3], "web", "web-9", "passing", FOLLOW_DEADLINE)
    assert n1.get("/registry/instance/web-9").json()["node"] == "n2"

    n2.kill9()
    http_target.stop()
    started = time.monotonic()
    took = wait_everywhere([n1, n3], "web", "web-9", "critical", 15)
    print(f"owner killed and target stopped → critical on both survivors after {took:.2f}s")
    takers = [n.name for n in (n1, n3) if "took over the checks" in n.log_text()]
    assert len(takers) == 1, f"exactly one survivor (the rendezvous winner) takes the check over: {takers}"
    assert time.monotonic() - started < 15


# MARK: - self-preservation


def self_preserving(node) -> bool:
    return node.get("/health").json()["self_preservation"]


def test_a_node_cut_off_from_most_of_the_cluster_pauses_expiry_until_it_reconnects(cluster):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    assert not self_preserving(n1)
    n2.kill9()
    n3.kill9()
    wait_until(lambda: self_preserving(n1), 10, "n1 to enter self-preservation")
    assert "roster_self_preservation 1" in n1.get("/metrics").text
    assert "entering self-preservation" in n1.log_text()

    n1.consul().agent.service.register("worker", service_id="w-1", check=consul.Check.ttl("1s"))
    n1.consul().agent.check.ttl_pass("service:w-1")
    # Three TTL periods go by, and the check is not expired: n1 cannot tell its peers' death
    # from its own isolation, so it does not judge.
    until = time.monotonic() + 3
    while time.monotonic() < until:
        assert check_status(n1, "worker", "w-1") == "passing", "a TTL expired during self-preservation"
        time.sleep(0.2)

    n2.restart()
    wait_until(lambda: not self_preserving(n1), 15, "n1 to leave self-preservation once it reaches n2")
    assert "leaving self-preservation" in n1.log_text()
    # Judging resumes, with a full TTL period from the reconnection and 5 s of grace for the
    # peers to see n1 again and forward it renewals (Registry.resumeGraceMillis).
    wait_everywhere([n1, n2], "worker", "w-1", "critical", FOLLOW_DEADLINE + 5)
