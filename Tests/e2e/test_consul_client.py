"""One real `roster` node through py-consul: TTL checks and blocking queries (SPEC §1, §2).

Each test starts its own node from the built binary on free loopback ports. Nothing sleeps to
synchronise; conditions are polled against deadlines (see conftest.wait_until). The only timed
waits are the stimuli of the blocking-query tests, where time itself is what is measured.
"""

from __future__ import annotations

import threading
import time

import consul

from conftest import wait_until


def check_status(c: consul.Consul, check_id: str):
    return c.agent.checks().get(check_id, {}).get("Status")


# MARK: - Consul API through py-consul


def test_py_consul_register_ttl_checks_and_deregister(node):
    c = node.consul()
    assert c.agent.service.register("api", service_id="api-1", port=9000, tags=["v1"], check=consul.Check.ttl("10s"))

    # A TTL check starts critical until the service reports in (Consul behaviour).
    assert check_status(c, "service:api-1") == "critical"
    _, passing = c.health.service("api", passing=True)
    assert passing == []

    assert c.agent.check.ttl_pass("service:api-1")
    _, entries = c.health.service("api", passing=True)
    assert [e["Service"]["ID"] for e in entries] == ["api-1"]
    assert entries[0]["Service"]["Port"] == 9000
    assert entries[0]["Service"]["Tags"] == ["v1"]
    assert any(ch["CheckID"] == "service:api-1" and ch["Status"] == "passing" for ch in entries[0]["Checks"])

    assert c.agent.check.ttl_fail("service:api-1", notes="disk full")
    _, passing = c.health.service("api", passing=True)
    assert passing == [], "a critical instance must not be returned with ?passing"
    _, everything = c.health.service("api")
    assert [e["Service"]["ID"] for e in everything] == ["api-1"], "without ?passing it is still listed"
    [check] = [ch for ch in everything[0]["Checks"] if ch["CheckID"] == "service:api-1"]
    assert check["Status"] == "critical"
    assert check["Output"] == "disk full"

    assert c.agent.check.ttl_pass("service:api-1")
    _, services = c.catalog.services()
    assert services.get("api") == ["v1"]

    me = c.agent.self()
    assert me["Config"]["NodeName"] == "n1"
    assert me["Config"]["Datacenter"] == "dc1"
    assert "Member" in me

    agent_services = c.agent.services()
    assert agent_services["api-1"]["Service"] == "api"
    assert agent_services["api-1"]["Port"] == 9000
    checks = c.agent.checks()
    assert checks["service:api-1"]["Status"] == "passing"
    assert checks["service:api-1"]["ServiceID"] == "api-1"

    assert c.agent.service.deregister("api-1")
    assert "api-1" not in c.agent.services()
    assert "service:api-1" not in c.agent.checks()
    assert c.health.service("api")[1] == []
    assert "api" not in c.catalog.services()[1]


def test_check_update_and_warn(node):
    c = node.consul()
    assert c.agent.service.register("upd", service_id="upd-1", port=9001, check=consul.Check.ttl("30s"))
    resp = node.put("/v1/agent/check/update/service:upd-1", {"Status": "warning", "Output": "slow"})
    assert resp.status_code == 200, resp.text
    check = c.agent.checks()["service:upd-1"]
    assert check["Status"] == "warning"
    assert check["Output"] == "slow"
    resp = node.put("/v1/agent/check/warn/service:upd-1")
    assert resp.status_code == 200
    # A warning is not passing.
    assert c.health.service("upd", passing=True)[1] == []


def test_unknown_check_is_an_error(node):
    resp = node.put("/v1/agent/check/pass/service:nosuch")
    assert 400 <= resp.status_code < 500, resp.status_code


def test_ttl_check_goes_critical_when_not_renewed(node):
    c = node.consul()
    assert c.agent.service.register("ttl", service_id="ttl-1", port=9002, check=consul.Check.ttl("1s"))
    started = time.monotonic()
    assert c.agent.check.ttl_pass("service:ttl-1")
    assert check_status(c, "service:ttl-1") == "passing"
    wait_until(lambda: check_status(c, "service:ttl-1") == "critical", timeout=6, message="TTL 1s to expire")
    took = time.monotonic() - started
    assert took >= 0.9, f"went critical after {took:.2f}s, before its 1s TTL ran out"
    assert c.health.service("ttl", passing=True)[1] == []


def test_blocking_query_wakes_on_change_to_its_service(node):
    c = node.consul()
    assert c.agent.service.register("blk", service_id="blk-1", port=9100)
    idx, entries = c.health.service("blk")
    assert len(entries) == 1

    writer = threading.Timer(1.0, lambda: c.agent.service.register("blk", service_id="blk-2", port=9101))
    started = time.monotonic()
    writer.start()
    try:
        new_idx, entries = c.health.service("blk", index=idx, wait="5s")
    finally:
        writer.join()
    took = time.monotonic() - started
    assert {e["Service"]["ID"] for e in entries} == {"blk-1", "blk-2"}
    assert int(new_idx) > int(idx)
    assert took >= 0.8, f"returned after {took:.2f}s, before the write: the query did not block"
    assert took < 3.0, f"returned after {took:.2f}s: the write did not wake it"


def test_blocking_query_ignores_other_services(node):
    c = node.consul()
    assert c.agent.service.register("quiet", service_id="quiet-1", port=9200)
    idx, _ = c.health.service("quiet")

    writer = threading.Timer(0.5, lambda: c.agent.service.register("noisy", service_id="noisy-1", port=9201))
    started = time.monotonic()
    writer.start()
    try:
        _, entries = c.health.service("quiet", index=idx, wait="3s")
    finally:
        writer.join()
    took = time.monotonic() - started
    assert [e["Service"]["ID"] for e in entries] == ["quiet-1"]
    assert took >= 2.7, f"woke after {took:.2f}s: a write to another service woke this watch"
    assert took < 6.0, f"took {took:.2f}s for a 3s wait"
