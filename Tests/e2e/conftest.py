"""End-to-end test fixtures: real `roster` processes on loopback.

Every node is started from the built binary (env ROSTER_BIN, default `.build/debug/roster`), on
free loopback ports, with its log in the test's tmp_path. Nothing here sleeps to synchronise:
`wait_until` polls a condition against a deadline and fails with what it last saw.

The processes and clusters themselves are in e2e_process.py and e2e_cluster.py. Their names
are re-exported here, because the tests and the chaos script (scripts/) import them from conftest.
"""

from __future__ import annotations

import pytest

from e2e_cluster import (  # noqa: F401 - re-exported
    ALIVE,
    CLUSTER_JOIN_TIMEOUT,
    FAILED,
    LEAVING,
    LEFT,
    STATUS_NAMES,
    CertDir,
    Cluster,
    ClusterNode,
    wait_member_status,
)
from e2e_process import (  # noqa: F401 - re-exported
    LOG_TAIL_LINES,
    REPO_ROOT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Node,
    error_of,
    free_ports,
    roster_binary,
    run_cli,
    tail,
    wait_until,
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
