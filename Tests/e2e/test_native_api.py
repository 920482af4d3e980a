"""One real `roster` node, native API: register, update, heartbeat, filters, status moves,
deregister, and native instances seen through the Consul API (SPEC §1, §2).

Each test starts its own node from the built binary on free loopback ports. Nothing sleeps to
synchronise; conditions are polled against deadlines (see conftest.wait_until).
"""

from __future__ import annotations

import requests

from conftest import error_of, wait_until
from single_node_helpers import all_ids, ids_of, native_instance, service_ids


def health_entry(node, name: str, sid: str, **params):
    resp = node.get(f"/v1/health/service/{name}", params=params)
    assert resp.status_code == 200, resp.text
    for entry in resp.json():
        if entry["Service"]["ID"] == sid:
            return entry
    return None


# MARK: - native API


def test_native_register_update_heartbeat_filters_status_deregister(node):
    one = native_instance(
        "orders", "orders-1",
        tags=["v1", "primary"], metadata={"team": "payments"}, version="1.2.0",
        capabilities=["grpc"], dependencies=["db"], endpoints={"http": "/"},
        deployment="blue", region="eu", zone="eu-1a", weight=10, status="RUNNING",
    )
    resp = node.post("/registry/register", one)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    for key in ("service_name", "instance_id", "host", "port", "tags", "metadata", "version", "capabilities",
                "dependencies", "endpoints", "deployment", "region", "zone", "weight", "status"):
        assert body[key] == one[key], f"{key}: sent {one[key]!r}, got {body.get(key)!r}"
    assert body["registered_at"] and body["last_heartbeat"]
    assert body["node"] == "n1"

    one["version"] = "1.2.1"
    resp = node.post("/registry/register", one)
    assert resp.status_code == 200, f"re-registering must be an update: {resp.status_code} {resp.text!r}"
    assert resp.json()["version"] == "1.2.1"

    two = native_instance(
        "orders", "orders-2", port=8081, tags=["v2"], version="2.0.0", capabilities=["http"],
        deployment="green", region="us", zone="us-1b", status="STARTING",
    )
    assert node.post("/registry/register", two).status_code == 201
    other = native_instance("billing", "billing-1", status="RUNNING")
    assert node.post("/registry/register", other).status_code == 201

    assert node.post("/registry/heartbeat", {"service_name": "orders", "instance_id": "orders-1"}).status_code == 200
    error_of(node.post("/registry/heartbeat", {"service_name": "orders", "instance_id": "nope"}))

    listing = node.get("/registry/services").json()["services"]
    assert ids_of(listing["orders"]) == {"orders-1", "orders-2"}
    assert ids_of(listing["billing"]) == {"billing-1"}
    assert service_ids(node, "orders") == {"orders-1", "orders-2"}

    # Each filter, on both listings.
    expectations = [
        ({"tag": "v1"}, {"orders-1"}),
        ({"version": "2.0.0"}, {"orders-2"}),
        ({"region": "us"}, {"orders-2"}),
        ({"zone": "eu-1a"}, {"orders-1"}),
        ({"status": "STARTING"}, {"orders-2"}),
        ({"deployment": "green"}, {"orders-2"}),
        ({"capability": "grpc"}, {"orders-1"}),
        ({"healthy": "true"}, {"orders-1"}),  # orders-2 is still STARTING
    ]
    for params, want in expectations:
        assert service_ids(node, "orders", **params) == want, f"filter {params}"
    assert all_ids(node, tag="v2") == {"orders-2"}
    assert all_ids(node, region="eu") == {"orders-1"}
    assert all_ids(node, healthy="true") == {"orders-1", "billing-1"}

    got = node.get("/registry/instance/orders-1")
    assert got.status_code == 200
    assert got.json()["version"] == "1.2.1" and got.json()["service_name"] == "orders"
    error_of(node.get("/registry/instance/nope"))

    def move(iid: str, status: str) -> requests.Response:
        return node.post("/registry/status", {"service_name": "orders", "instance_id": iid, "status": status})

    assert move("orders-2", "RUNNING").status_code == 200
    assert move("orders-2", "STOPPING").status_code == 200
    assert move("orders-2", "STOPPED").status_code == 200
    resp = move("orders-2", "RUNNING")
    assert resp.status_code == 409, f"STOPPED -> RUNNING must be refused: {resp.status_code} {resp.text!r}"
    error_of(resp)
    assert node.get("/registry/instance/orders-2").json()["status"] == "STOPPED", "a refused move changed state"
    assert move("orders-1", "UNHEALTHY").status_code == 200
    assert move("orders-1", "RUNNING").status_code == 200
    error_of(move("orders-1", "BOGUS"))
    error_of(move("nope", "RUNNING"))

    dereg = {"service_name": "orders", "instance_id": "orders-1"}
    assert node.post("/registry/deregister", dereg).status_code == 200
    error_of(node.post("/registry/deregister", dereg))
    error_of(node.get("/registry/instance/orders-1"))
    error_of(node.post("/registry/heartbeat", dereg))
    assert service_ids(node, "orders") == {"orders-2"}


def test_native_instances_show_up_in_consul_api(node):
    assert node.post("/registry/register", native_instance("mixed", "mixed-1", port=7100, status="RUNNING")).status_code == 201
    entry = wait_until(lambda: health_entry(node, "mixed", "mixed-1"), timeout=2, message="native instance in Consul API")
    assert entry["Service"]["Port"] == 7100
    assert node.put("/v1/agent/service/register", {"Name": "mixed", "ID": "mixed-2", "Port": 7101}).status_code == 200
    assert "mixed-2" in service_ids(node, "mixed")
