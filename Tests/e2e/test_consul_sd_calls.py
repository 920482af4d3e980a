"""The requests Prometheus's `consul_sd_configs` makes, replayed against a real node.

Debian builds Prometheus without Consul service discovery (its config loader rejects
`consul_sd_configs`), so the real one can't run here. This replays what it sends through
hashicorp's Go client: `/v1/agent/self` for the datacenter, then blocking loops on
`/v1/catalog/services` and `/v1/health/service/NAME` with `dc=`, `stale`, and `wait` written
in milliseconds (`30000ms`), using `X-Consul-Index` as the next `index`.
"""

from __future__ import annotations

import threading
import time

import requests


def blocking_get(node, path: str, index: int) -> tuple[requests.Response, float]:
    started = time.monotonic()
    resp = node.get(f"{path}?dc=dc1&index={index}&stale=&wait=30000ms", timeout=40)
    return resp, time.monotonic() - started


def test_prometheus_consul_sd_request_shapes_discover_and_follow_changes(node):
    self_info = node.get("/v1/agent/self").json()
    assert self_info["Config"]["Datacenter"] == "dc1"

    first = node.get("/v1/catalog/services?dc=dc1&stale=&wait=30000ms")
    assert first.status_code == 200
    index = int(first.headers["X-Consul-Index"])

    result: dict = {}
    waiter = threading.Thread(target=lambda: result.update(catalog=blocking_get(node, "/v1/catalog/services", index)))
    waiter.start()
    assert node.put("/v1/agent/service/register", {"Name": "web", "ID": "web-1", "Address": "127.0.0.1", "Port": 9101}).status_code == 200
    waiter.join(timeout=10)
    resp, took = result["catalog"]
    assert "web" in resp.json(), resp.text
    assert took < 5, f"the catalog watch took {took:.1f}s to wake"

    health = node.get("/v1/health/service/web?dc=dc1&stale=&wait=30000ms")
    entries = health.json()
    assert [e["Service"]["ID"] for e in entries] == ["web-1"]
    entry = entries[0]
    # What Prometheus turns into __meta_consul_* labels and the target address.
    assert entry["Node"]["Node"] and entry["Node"]["Address"] and entry["Node"]["Datacenter"] == "dc1"
    assert entry["Service"]["Address"] == "127.0.0.1" and entry["Service"]["Port"] == 9101
    assert all(c["Status"] == "passing" for c in entry["Checks"])

    index = int(health.headers["X-Consul-Index"])
    waiter = threading.Thread(target=lambda: result.update(health=blocking_get(node, "/v1/health/service/web", index)))
    waiter.start()
    assert node.put("/v1/agent/service/register", {"Name": "web", "ID": "web-2", "Address": "127.0.0.1", "Port": 9102}).status_code == 200
    waiter.join(timeout=10)
    resp, took = result["health"]
    assert sorted(e["Service"]["ID"] for e in resp.json()) == ["web-1", "web-2"]
    assert int(resp.headers["X-Consul-Index"]) > index, "the index must move forward"
    assert took < 5
