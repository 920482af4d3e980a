"""One real `roster` node killed or stopped: acknowledged writes survive kill -9, a graceful
shutdown exits 0 promptly and keeps the data (SPEC §4.1).

Each test starts its own node from the built binary on free loopback ports. Nothing sleeps to
synchronise; conditions are polled against deadlines (see conftest.wait_until).
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import consul
import pytest
import requests

from conftest import wait_until
from single_node_helpers import all_ids, consul_index, native_instance

# MARK: - durability (SPEC §4.1)


class Writer(threading.Thread):
    """Writes until told to stop or the node goes away; remembers what was acknowledged."""

    def __init__(self, node, kind: str, prefix: str):
        super().__init__(daemon=True)
        self.node, self.kind, self.prefix = node, kind, prefix
        self.halt = threading.Event()
        self.acked: list[str] = []          # registered, 2xx
        self.deregistered: list[str] = []   # deregistered, 2xx
        self.unsettled: list[str] = []      # deregistration sent but not acknowledged: either state is fine
        self.errors = 0
        self.session = requests.Session()

    def register(self, iid: str) -> bool:
        if self.kind == "consul":
            resp = self.session.put(
                self.node.url("/v1/agent/service/register"),
                data=json.dumps({"Name": "dur-consul", "ID": iid, "Port": 9000}), timeout=5,
            )
        else:
            resp = self.session.post(
                self.node.url("/registry/register"),
                data=json.dumps(native_instance("dur-native", iid, port=9000)), timeout=5,
            )
        return 200 <= resp.status_code < 300

    def deregister(self, iid: str) -> bool:
        if self.kind == "consul":
            resp = self.session.put(self.node.url(f"/v1/agent/service/deregister/{iid}"), timeout=5)
        else:
            resp = self.session.post(
                self.node.url("/registry/deregister"),
                data=json.dumps({"service_name": "dur-native", "instance_id": iid}), timeout=5,
            )
        return 200 <= resp.status_code < 300

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            iid = f"{self.prefix}-{i}"
            i += 1
            try:
                if not self.register(iid):
                    self.errors += 1
                    continue
                self.acked.append(iid)
                # Every third instance is deregistered again right away.
                if i % 3 == 0:
                    self.unsettled.append(iid)
                    if self.deregister(iid):
                        self.unsettled.remove(iid)
                        self.deregistered.append(iid)
            except requests.RequestException:
                if not self.node.running:
                    return
                self.errors += 1
        self.session.close()


def registered_consul_ids(node) -> set[str]:
    return set(node.get("/v1/agent/services").json())


def test_acknowledged_writes_survive_kill_9(node):
    writers = [
        Writer(node, "native", "nat-a"), Writer(node, "native", "nat-b"),
        Writer(node, "consul", "con-a"), Writer(node, "consul", "con-b"),
    ]
    for w in writers:
        w.start()
    started = time.monotonic()
    try:
        wait_until(lambda: time.monotonic() - started >= 2.0 and all(len(w.acked) >= 5 for w in writers),
                   timeout=20, message="every writer to have acknowledged writes for 2 s")
        node.kill9()  # mid-stream: the writers are still sending
    finally:
        for w in writers:
            w.halt.set()
        for w in writers:
            w.join(timeout=10)

    node.start()
    native_ids = all_ids(node)
    consul_ids = registered_consul_ids(node)
    total = 0
    for w in writers:
        present = native_ids if w.kind == "native" else consul_ids
        gone = set(w.deregistered)
        # A write in flight at the kill may or may not have landed; only acknowledged ones count.
        must_exist = set(w.acked) - gone - set(w.unsettled)
        lost = sorted(must_exist - present)
        assert not lost, f"{w.prefix}: {len(lost)} acknowledged registrations lost after kill -9, e.g. {lost[:5]}"
        resurrected = sorted(gone & present)
        assert not resurrected, f"{w.prefix}: acknowledged deregistrations came back: {resurrected[:5]}"
        total += len(w.acked)
    assert total >= 20, f"only {total} writes acknowledged in 2 s; the test proves little"
    # Native instances also answer by id after the restart.
    some = next(iter(set(writers[0].acked) - set(writers[0].deregistered) - set(writers[0].unsettled)))
    assert node.get(f"/registry/instance/{some}").status_code == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown_exits_0_and_keeps_data(node, sig):
    assert node.post("/registry/register", native_instance("keep", "keep-1", status="RUNNING")).status_code == 201
    assert node.put("/v1/agent/service/register", {"Name": "kept", "ID": "kept-1", "Port": 1}).status_code == 200
    assert node.put("/v1/agent/service/register", {"Name": "gone", "ID": "gone-1", "Port": 1}).status_code == 200
    assert node.put("/v1/agent/service/deregister/gone-1").status_code == 200
    took = node.stop(sig)
    assert took < 5.0
    node.start()
    assert node.get("/registry/instance/keep-1").json()["status"] == "RUNNING"
    services = registered_consul_ids(node)
    assert "kept-1" in services
    assert "gone-1" not in services


def test_sigterm_exits_promptly_while_a_blocking_query_is_open(node):
    """Consul clients (consul-template, watchers) keep long blocking queries open at all times."""
    assert node.put("/v1/agent/service/register", {"Name": "w", "ID": "w-1", "Port": 1}).status_code == 200
    idx = consul_index(node.get("/v1/health/service/w"))
    with socket.create_connection(("127.0.0.1", node.http_port), timeout=5) as sock:
        sock.sendall(
            f"GET /v1/health/service/w?index={idx}&wait=30s HTTP/1.1\r\nHost: {node.http_addr}\r\n\r\n".encode()
        )
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(1)  # held by the server: the query is in flight and blocking
        took = node.stop(signal.SIGTERM)
        assert took < 5.0
        sock.settimeout(5)
        try:
            sock.recv(65536)  # an answer or EOF; either way the connection is not left hanging
        except ConnectionResetError:
            pass


def test_restart_after_kill_9_keeps_checks(node):
    c = node.consul()
    assert c.agent.service.register("chk", service_id="chk-1", port=9300, check=consul.Check.ttl("60s"))
    assert c.agent.check.ttl_pass("service:chk-1")
    node.kill9()
    node.start()
    c = node.consul()
    assert "service:chk-1" in c.agent.checks(), "the service's check was lost across kill -9"
    assert "chk-1" in c.agent.services()
