"""What every part of the chaos run shares: the cluster's size, the test helpers of Tests/e2e
(whose `Cluster` starts and stops real `roster agent` processes), and reads of a node's state."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
E2E_DIR = REPO_ROOT / "Tests" / "e2e"
if str(E2E_DIR) not in sys.path:
    sys.path.insert(0, str(E2E_DIR))

import requests  # noqa: E402

from conftest import ALIVE, FAILED, STATUS_NAMES, Cluster, ClusterNode, tail, wait_until  # noqa: E402, F401

NODES = 5
HEALTH_SERVICE = "chaos-ttl"  # the TTL-checked instances of chaos_health; not the writers'


class ChaosFailure(AssertionError):
    pass


def registry_of(node: ClusterNode) -> dict[str, dict]:
    """Every instance `node` holds, by id, except the TTL-checked ones: their heartbeat times and
    check outputs are renewed per node while the run goes on, so chaos_health checks them."""
    resp = requests.get(node.url("/registry/services"), timeout=10, headers={"Connection": "close"})
    assert resp.status_code == 200, f"{node.name}: GET /registry/services -> {resp.status_code} {resp.text[:200]!r}"
    out: dict[str, dict] = {}
    for service, instances in resp.json()["services"].items():
        if service == HEALTH_SERVICE:
            continue
        for inst in instances:
            out[inst["instance_id"]] = inst
    return out


def statuses_of(node: ClusterNode) -> dict[str, int]:
    resp = requests.get(node.url("/v1/agent/members"), timeout=5, headers={"Connection": "close"})
    assert resp.status_code == 200, f"{node.name}: /v1/agent/members -> {resp.status_code}"
    return {m["Name"]: int(m["Status"]) for m in resp.json()}
