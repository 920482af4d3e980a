"""One real `roster` node, Consul API over plain HTTP: what a user does with curl (SPEC §1, §2).

Each test starts its own node from the built binary on free loopback ports. Nothing sleeps to
synchronise; conditions are polled against deadlines (see conftest.wait_until).
"""

from __future__ import annotations

import pytest

from single_node_helpers import consul_index

# MARK: - Consul API over plain HTTP (what a user does with curl)


def test_health_endpoint_answers_json(node):
    resp = node.get("/health")
    assert resp.status_code == 200
    assert isinstance(resp.json(), dict)


def test_consul_register_with_curl_then_discover(node):
    resp = node.put("/v1/agent/service/register", {"Name": "web", "ID": "web-1", "Port": 8080, "Tags": ["v1"]})
    assert resp.status_code == 200, resp.text

    resp = node.get("/v1/health/service/web")
    assert resp.status_code == 200, resp.text
    consul_index(resp)
    entries = resp.json()
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["Service"]["ID"] == "web-1"
    assert entry["Service"]["Service"] == "web"
    assert entry["Service"]["Tags"] == ["v1"]
    assert entry["Service"]["Port"] == 8080
    assert entry["Node"]["Node"] == "n1"
    assert isinstance(entry["Checks"], list)

    resp = node.get("/v1/catalog/services")
    assert resp.status_code == 200, resp.text
    consul_index(resp)
    assert resp.json().get("web") == ["v1"], resp.json()

    resp = node.get("/v1/catalog/service/web")
    assert resp.status_code == 200, resp.text
    consul_index(resp)
    [entry] = resp.json()
    assert entry["ServiceID"] == "web-1"
    assert entry["ServiceName"] == "web"
    assert entry["ServicePort"] == 8080
    assert entry["ServiceTags"] == ["v1"]
    assert entry["Node"] == "n1"

    # An unknown service is an empty list, not an error (Consul behaviour).
    resp = node.get("/v1/health/service/nosuch")
    assert resp.status_code == 200 and resp.json() == []
    consul_index(resp)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/catalog/services",
        "/v1/catalog/service/web",
        "/v1/catalog/nodes",
        "/v1/health/service/web",
        "/v1/health/checks/web",
        "/v1/health/state/any",
    ],
)
def test_every_consul_read_returns_an_index(node, path):
    assert node.put("/v1/agent/service/register", {"Name": "web", "ID": "web-1", "Port": 80}).status_code == 200
    resp = node.get(path)
    assert resp.status_code == 200, f"GET {path} -> {resp.status_code} {resp.text!r}"
    consul_index(resp)
    resp.json()


def test_consul_keys_are_case_insensitive(node):
    resp = node.put("/v1/agent/service/register", {"name": "lower", "id": "lower-1", "port": 7000, "tags": ["a"]})
    assert resp.status_code == 200, resp.text
    resp = node.put("/v1/agent/service/register", {"NAME": "upper", "iD": "upper-1", "PORT": 7001})
    assert resp.status_code == 200, resp.text

    services = node.get("/v1/agent/services").json()
    assert services["lower-1"]["Service"] == "lower"
    assert services["lower-1"]["Port"] == 7000
    assert services["lower-1"]["Tags"] == ["a"]
    assert services["upper-1"]["Service"] == "upper"
    assert services["upper-1"]["Port"] == 7001


def test_agent_members_and_status(node):
    members = node.get("/v1/agent/members")
    assert members.status_code == 200, members.text
    [me] = [m for m in members.json() if m["Name"] == "n1"]
    assert me["Status"] == 1  # alive

    leader = node.get("/v1/status/leader")
    assert leader.status_code == 200
    assert isinstance(leader.json(), str)
    peers = node.get("/v1/status/peers")
    assert peers.status_code == 200
    assert isinstance(peers.json(), list)
