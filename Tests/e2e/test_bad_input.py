"""One real `roster` node given bad input on both APIs: each is refused with a well-formed 4xx
naming the field, and leaves nothing behind (SPEC §1, §2).

Each test starts its own node from the built binary on free loopback ports. Nothing sleeps to
synchronise; conditions are polled against deadlines (see conftest.wait_until).
"""

from __future__ import annotations

import json

import pytest
import requests

from conftest import error_of
from single_node_helpers import LOOPBACK_HOST, native_instance

# MARK: - bad input


BIG = "x" * (3 * 1024 * 1024)

NATIVE_BAD = [
    ("missing name", {"instance_id": "bad-1", "host": LOOPBACK_HOST, "port": 80}, "service_name"),
    ("port 70000", native_instance("bad", "bad-1", port=70000), "port"),
    ("negative port", native_instance("bad", "bad-1", port=-1), "port"),
    ("name with spaces", native_instance("my service", "bad-1"), "service_name"),
    ("id with spaces", native_instance("bad", "bad 1"), "instance_id"),
    ("port as string", native_instance("bad", "bad-1", port="8080"), "port"),
    ("bad status", native_instance("bad", "bad-1", status="SLEEPING"), "status"),
    ("bad deployment", native_instance("bad", "bad-1", deployment="purple"), "deployment"),
    ("tags not a list", native_instance("bad", "bad-1", tags="v1"), "tags"),
    ("truncated json", '{"service_name": "bad", "instance_id": "bad-1", "po', None),
    ("json array", "[1, 2]", None),
    ("json null", "null", None),
    ("3 MB metadata value", native_instance("bad", "bad-1", metadata={"blob": BIG}), None),
]

CONSUL_BAD = [
    ("missing name", {"ID": "bad-1", "Port": 80}, "name"),
    ("port 70000", {"Name": "bad", "ID": "bad-1", "Port": 70000}, "port"),
    ("name with spaces", {"Name": "my service", "ID": "bad-1"}, "name"),
    ("port as string", {"Name": "bad", "ID": "bad-1", "Port": "8080"}, "port"),
    ("bad check interval", {"Name": "bad", "ID": "bad-1", "Check": {"TTL": "ten seconds"}}, "ttl"),
    ("truncated json", '{"Name": "bad", "ID": "bad-1", "Po', None),
    ("json array", "[1, 2]", None),
    ("3 MB meta value", {"Name": "bad", "ID": "bad-1", "Meta": {"blob": BIG}}, None),
]


def send_raw(node, method: str, path: str, body) -> requests.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    return node.session.request(
        method, node.url(path), data=data.encode(), headers={"Content-Type": "application/json"}, timeout=30
    )


def assert_still_serving_without(node, name: str = "bad", iid: str = "bad-1") -> None:
    assert node.running, "the node died on bad input"
    assert node.get("/health").status_code == 200
    assert node.get(f"/registry/instance/{iid}").status_code == 404, "bad input left an instance behind"
    assert iid not in node.get("/v1/agent/services").json()
    assert node.get(f"/v1/health/service/{name}").json() == []


@pytest.mark.parametrize("case,body,field", NATIVE_BAD, ids=[c[0] for c in NATIVE_BAD])
def test_native_bad_input_is_refused_cleanly(node, case, body, field):
    resp = send_raw(node, "POST", "/registry/register", body)
    err = error_of(resp)
    if case.startswith("3 MB"):
        assert resp.status_code in (400, 413), resp.status_code
    elif field is not None:
        assert resp.status_code == 400, f"{case}: {resp.status_code} {resp.text!r}"
        assert field in err["field"].lower(), f"{case}: error names {err['field']!r}, not {field!r}"
    assert_still_serving_without(node)


@pytest.mark.parametrize("case,body,field", CONSUL_BAD, ids=[c[0] for c in CONSUL_BAD])
def test_consul_bad_input_is_refused_cleanly(node, case, body, field):
    resp = send_raw(node, "PUT", "/v1/agent/service/register", body)
    err = error_of(resp)
    if case.startswith("3 MB"):
        assert resp.status_code in (400, 413), resp.status_code
    elif field is not None:
        assert resp.status_code == 400, f"{case}: {resp.status_code} {resp.text!r}"
        assert field in err["field"].lower(), f"{case}: error names {err['field']!r}, not {field!r}"
    assert_still_serving_without(node)


def test_bad_update_leaves_the_old_instance_intact(node):
    good = native_instance("keep", "keep-1", port=8000, tags=["v1"])
    assert node.post("/registry/register", good).status_code == 201
    error_of(node.post("/registry/register", dict(good, port=70000, tags=["v2"])))
    got = node.get("/registry/instance/keep-1").json()
    assert got["port"] == 8000 and got["tags"] == ["v1"]


def test_unknown_instance_operations_are_404(node):
    unknown = {"service_name": "ghost", "instance_id": "ghost-1"}
    for path, body in (
        ("/registry/heartbeat", unknown),
        ("/registry/deregister", unknown),
        ("/registry/status", dict(unknown, status="RUNNING")),
    ):
        resp = node.post(path, body)
        assert resp.status_code == 404, f"POST {path}: {resp.status_code} {resp.text!r}"
        error_of(resp)
    resp = node.get("/registry/instance/ghost-1")
    assert resp.status_code == 404
    error_of(resp)
    assert "ghost" not in node.get("/registry/services").json()["services"]
