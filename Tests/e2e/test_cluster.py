"""Three real `roster` nodes over mutual TLS on loopback (SPEC §1, §4.2, §4.5, §4.8).

Each test gets its own cluster (conftest.cluster): a fresh CA and node certificates made with the
real binary, three nodes each joining the other two, started and converged (every node sees all
three alive). Nothing sleeps to synchronise: conditions are polled against deadlines. Propagation
is measured by polling every 20 ms from just before the write is sent.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest

from conftest import ALIVE, FAILED, LEAVING, LEFT, STATUS_NAMES, CertDir, run_cli, wait_member_status, wait_until

PROPAGATION_LIMIT = 1.0  # seconds: a write at any node is visible at every node within 1 s
POLL = 0.02


# MARK: - helpers


def native_instance(name: str, iid: str, **fields) -> dict:
    body = {"service_name": name, "instance_id": iid, "host": "127.0.0.1", "port": 8080}
    body.update(fields)
    return body


def has_instance(node, iid: str) -> bool:
    resp = node.get(f"/registry/instance/{iid}", timeout=5)
    assert resp.status_code in (200, 404), f"{node.name}: GET /registry/instance/{iid} -> {resp.status_code} {resp.text!r}"
    return resp.status_code == 200


def consul_ids(node, service: str) -> set[str]:
    resp = node.get(f"/v1/health/service/{service}", timeout=5)
    assert resp.status_code == 200, f"{node.name}: GET /v1/health/service/{service} -> {resp.status_code}"
    return {entry["Service"]["ID"] for entry in resp.json()}


def catalog_services(node) -> set[str]:
    resp = node.get("/v1/catalog/services", timeout=5)
    assert resp.status_code == 200, f"{node.name}: GET /v1/catalog/services -> {resp.status_code}"
    return set(resp.json())


def all_ids(node) -> set[str]:
    resp = node.get("/registry/services", timeout=10)
    assert resp.status_code == 200, f"{node.name}: GET /registry/services -> {resp.status_code} {resp.text[:200]!r}"
    return {i["instance_id"] for instances in resp.json()["services"].values() for i in instances}


def visible(node, service: str, iid: str) -> bool:
    """The instance shows through every read path: by id, in health, in the catalog."""
    return has_instance(node, iid) and iid in consul_ids(node, service) and service in catalog_services(node)


def gone(node, service: str, iid: str) -> bool:
    return not has_instance(node, iid) and iid not in consul_ids(node, service)


def time_until_everywhere(nodes, condition, what: str, write, timeout: float = 5.0) -> float:
    """Performs `write` and returns the seconds from just before it until `condition(node)` holds at
    every node, polling every 20 ms. Fails (with the time it gave up) if that takes over `timeout`."""
    pending = list(nodes)
    started = time.monotonic()
    write()
    deadline = started + timeout
    while True:
        pending = [n for n in pending if not condition(n)]
        elapsed = time.monotonic() - started
        if not pending:
            return elapsed
        if elapsed >= timeout:
            raise AssertionError(f"{what}: still not at {[n.name for n in pending]} after {timeout:.1f}s")
        time.sleep(max(0.0, min(POLL, deadline - time.monotonic())))


def ok(resp, *codes: int):
    codes = codes or (200,)
    assert resp.status_code in codes, f"{resp.request.method} {resp.url} -> {resp.status_code} {resp.text[:300]!r}"
    return resp


def readable(statuses: dict[str, int]) -> dict[str, str]:
    return {name: STATUS_NAMES.get(s, str(s)) for name, s in statuses.items()}


# A refusal as the binary logs it: a refused peer, or a failed TLS handshake / certificate check.
# "Connection refused" (nothing listening) is not a refusal of the peer and does not count, nor is
# a TLS "uncleanShutdown" of a connection that was working.
REFUSAL = re.compile(
    r"refus|reject|handshake.{0,20}fail|certificate.{0,3}verif|unknown.{0,3}ca\b|bad.{0,3}certificate|untrusted",
    re.IGNORECASE,
)
NOT_A_REFUSAL = re.compile(r"connection refused|errno: 111|^=====", re.IGNORECASE)


def refusal_lines(node, since: int = 0) -> list[str]:
    """Log lines of `node` after byte offset `since` that report a refused peer or a TLS failure."""
    text = node.log_text()[since:]
    return [line for line in text.splitlines() if REFUSAL.search(line) and not NOT_A_REFUSAL.search(line)]


# MARK: - replication


def test_write_at_any_node_is_visible_everywhere_within_1s(cluster):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    nodes = [n1, n2, n3]
    timings = {}

    # Consul registration at n1, read through every API at n2 and n3 (and n1 itself).
    timings["register web-1 at n1"] = time_until_everywhere(
        nodes, lambda n: visible(n, "web", "web-1"), "web-1 registered at n1",
        lambda: ok(n1.put("/v1/agent/service/register", {"Name": "web", "ID": "web-1", "Port": 8080, "Tags": ["v1"]})),
    )
    # Native registration at n3.
    timings["register api-1 at n3"] = time_until_everywhere(
        nodes, lambda n: visible(n, "api", "api-1"), "api-1 registered at n3",
        lambda: ok(n3.post("/registry/register", native_instance("api", "api-1", port=9090)), 200, 201),
    )
    # An update at n2 of an instance registered at n3: the new port shows everywhere.
    timings["update api-1 at n2"] = time_until_everywhere(
        nodes, lambda n: n.get("/registry/instance/api-1").json().get("port") == 9191, "api-1 updated at n2",
        lambda: ok(n2.post("/registry/register", native_instance("api", "api-1", port=9191)), 200, 201),
    )
    # Deregistrations at n2: the native one registered at n3, the Consul one registered at n1.
    timings["deregister api-1 at n2"] = time_until_everywhere(
        nodes, lambda n: gone(n, "api", "api-1"), "api-1 deregistered at n2",
        lambda: ok(n2.post("/registry/deregister", {"service_name": "api", "instance_id": "api-1"})),
    )
    timings["deregister web-1 at n2"] = time_until_everywhere(
        nodes, lambda n: gone(n, "web", "web-1"), "web-1 deregistered at n2",
        lambda: ok(n2.put("/v1/agent/service/deregister/web-1")),
    )

    print("propagation:", {what: f"{t * 1000:.0f} ms" for what, t in timings.items()})
    slow = {what: round(t, 3) for what, t in timings.items() if t >= PROPAGATION_LIMIT}
    assert not slow, f"writes took {PROPAGATION_LIMIT}s or more to reach every node: {slow}; all: {timings}"
    # Nothing else appeared anywhere on the way, and every node holds the same (empty) set.
    for n in nodes:
        assert all_ids(n) == set(), f"{n.name} still holds {all_ids(n)}"


def test_killed_node_is_failed_then_rejoins_and_catches_up(cluster):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]

    before = {f"old-{i}" for i in range(5)}
    for iid in sorted(before):
        ok(n1.post("/registry/register", native_instance("old", iid)), 201)
    wait_until(lambda: before <= all_ids(n3), 10, "the first five instances to reach n3")

    n3.kill9()
    took, seen = wait_member_status([n1, n2], "n3", {FAILED}, timeout=10)
    # Suspicion on the way is fine; a left (graceful) status for a kill -9 is not.
    for observer, statuses in seen.items():
        assert LEFT not in statuses, f"{observer} saw the killed n3 as left: {statuses}"

    # While n3 is down: 50 new instances at n1 and one old one deregistered.
    batch = {f"batch-{i:02d}" for i in range(50)}
    for iid in sorted(batch):
        ok(n1.post("/registry/register", native_instance("batch", iid, port=10000 + int(iid[-2:]))), 201)
    ok(n1.post("/registry/deregister", {"service_name": "old", "instance_id": "old-0"}))
    expected = (before - {"old-0"}) | batch
    assert all_ids(n1) == expected
    wait_until(lambda: all_ids(n2) == expected, 10, "n2 to hold what n1 holds while n3 is down")

    n3.start()  # same name, ports, certificate and data dir
    restarted = time.monotonic()
    cluster.wait_all_alive(timeout=10)
    rejoin = time.monotonic() - restarted
    wait_until(lambda: all_ids(n3) == all_ids(n1), max(0.5, 10 - rejoin),
               "n3 to hold exactly n1's instance set after its restart")
    caught_up = time.monotonic() - restarted

    ids3 = all_ids(n3)
    assert ids3 == expected, f"n3 differs: missing {sorted(expected - ids3)[:5]}, extra {sorted(ids3 - expected)[:5]}"
    assert "old-0" not in ids3, "the instance deregistered while n3 was down came back"
    assert catalog_services(n3) == catalog_services(n1) == {"old", "batch"}
    assert consul_ids(n3, "batch") == consul_ids(n1, "batch") == batch
    assert caught_up < 10, f"n3 took {caught_up:.1f}s to rejoin and catch up"
    print(f"n3 marked failed after {took:.2f}s; alive again after {rejoin:.2f}s; caught up after {caught_up:.2f}s")


# MARK: - peer security (SPEC §4.8)


def test_node_with_a_certificate_from_another_ca_is_refused(cluster, tmp_path):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    members = [n1, n2, n3]
    offsets = {n.name: len(n.log_text()) for n in members}

    other_ca = CertDir(tmp_path / "other-ca")
    intruder = cluster.add_node("n4", other_ca, join=[n1.bind_addr])
    intruder.start()  # it serves on its own: a node that reaches no peer still takes writes
    ok(intruder.post("/registry/register", native_instance("evil", "evil-1")), 201)
    assert has_instance(intruder, "evil-1")

    # The intruder has tried n1: the refusal is logged on one side or the other. Meanwhile n1
    # must never list it, not even for a moment.
    sightings = []

    def refused():
        if "n4" in n1.members():
            sightings.append(readable(n1.statuses()))
        return refusal_lines(intruder) + [l for n in members for l in refusal_lines(n, offsets[n.name])]

    lines = wait_until(refused, 15, "a refusal / TLS error in the intruder's or the cluster's logs", interval=0.2)
    assert not sightings, f"n1 listed the intruder: {sightings[0]}"

    # A marker written at n1 after the intruder's write has reached n2 and n3: the cluster has
    # had every chance to gossip whatever it knows.
    ok(n1.post("/registry/register", native_instance("marker", "marker-1")), 201)
    wait_until(lambda: has_instance(n2, "marker-1") and has_instance(n3, "marker-1"), 5, "the marker at n2 and n3")

    for n in members:
        assert not has_instance(n, "evil-1"), f"the intruder's registration reached {n.name}"
        assert "evil" not in catalog_services(n), f"the intruder's service shows in {n.name}'s catalog"
        assert "n4" not in n.members(), f"{n.name} lists the intruder: {readable(n.statuses())}"
        assert all(s == ALIVE for s in n.statuses().values()), f"{n.name}: {readable(n.statuses())}"
    # ... and it could not read the cluster's state either.
    assert not has_instance(intruder, "marker-1"), "the intruder received the cluster's state"
    assert intruder.running, "the refused node should keep serving on its own"
    assert all(n.running for n in members)
    print("refusal logged:", lines[0][:200])


def test_garbage_on_the_peer_port_closes_only_that_connection(cluster):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]

    def closed_by_peer(sock: socket.socket, timeout: float = 10) -> bytes:
        """Reads until the peer closes; returns what it sent first. Fails if it stays open."""
        sock.settimeout(timeout)
        got = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return got
                got += chunk
        except (ConnectionResetError, BrokenPipeError):
            return got
        except socket.timeout:
            raise AssertionError(f"n1 kept the garbage connection open for {timeout}s (received {got[:40]!r})") from None

    def send_all(sock: socket.socket, data: bytes) -> None:
        try:
            sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed before it had all: that is the point

    # An idle connection with a few garbage bytes stays open meanwhile: it must not stall anything.
    idle = socket.create_connection(("127.0.0.1", n1.bind_port), timeout=5)
    send_all(idle, b"\x16\x03")
    try:
        with socket.create_connection(("127.0.0.1", n1.bind_port), timeout=5) as sock:
            send_all(sock, os.urandom(64 * 1024))
            closed_by_peer(sock)
        with socket.create_connection(("127.0.0.1", n1.bind_port), timeout=5) as sock:
            send_all(sock, f"GET /v1/agent/members HTTP/1.1\r\nHost: {n1.bind_addr}\r\n\r\n".encode())
            answer = closed_by_peer(sock)
            assert not answer.startswith(b"HTTP/"), f"the peer port answered HTTP: {answer[:80]!r}"
        # A TLS ClientHello-looking header that announces a 16 MB record, then garbage.
        with socket.create_connection(("127.0.0.1", n1.bind_port), timeout=5) as sock:
            send_all(sock, b"\x16\x03\x01\xff\xff" + os.urandom(4096))
            closed_by_peer(sock)

        assert n1.running, "n1 died on garbage"
        ok(n1.get("/health"))
        statuses = n1.statuses()
        assert statuses.get("n2") == ALIVE and statuses.get("n3") == ALIVE, f"n1 sees {readable(statuses)}"

        took = time_until_everywhere(
            [n1, n3], lambda n: has_instance(n, "after-1"), "after-1 registered at n2",
            lambda: ok(n2.post("/registry/register", native_instance("after", "after-1")), 201),
        )
        assert took < PROPAGATION_LIMIT, f"a write at n2 took {took:.3f}s to reach n1 and n3 after the garbage"
        statuses = n1.statuses()
        assert statuses.get("n2") == ALIVE and statuses.get("n3") == ALIVE, f"n1 sees {readable(statuses)}"
    finally:
        idle.close()


# MARK: - membership


def test_sigterm_is_a_graceful_leave(cluster):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]

    code, took = n2.signal_and_wait(signal.SIGTERM, timeout=5)
    assert code == 0, f"n2 exited with {code} after SIGTERM"
    assert took < 5.0, f"n2 took {took:.2f}s to exit"

    elapsed, seen = wait_member_status([n1, n3], "n2", {LEFT}, timeout=5)
    # Then watch for 2 s more: a node that left must not turn failed when its probes time out.
    # (Time itself is what is measured here.)
    watch_until = time.monotonic() + 2.0
    while time.monotonic() < watch_until:
        for o in (n1, n3):
            status = o.statuses().get("n2")
            if status is not None and seen[o.name][-1] != status:
                seen[o.name].append(status)
        time.sleep(0.1)
    for observer, statuses in seen.items():
        names = [STATUS_NAMES.get(s, s) for s in statuses]
        assert FAILED not in statuses, f"{observer} saw n2 as failed after a graceful leave: {names}"
        assert statuses[-1] == LEFT, f"{observer} ended with n2 {names[-1]}, not left: {names}"
        assert set(statuses) <= {ALIVE, LEAVING, LEFT}, f"{observer}: {names}"
    # The two that stay still see each other alive.
    assert n1.statuses().get("n3") == ALIVE and n3.statuses().get("n1") == ALIVE


def test_members_api_and_cli_list_all_three(cluster):
    for observer in cluster.nodes:
        members = observer.members()
        assert set(members) == {"n1", "n2", "n3"}, f"{observer.name} lists {sorted(members)}"
        for n in cluster.nodes:
            m = members[n.name]
            assert int(m["Status"]) == ALIVE, f"{observer.name}: {n.name} is {m['Status']}"
            assert m["Addr"] == "127.0.0.1" and int(m["Port"]) == n.bind_port, f"{observer.name}: {n.name} at {m}"

    result = run_cli("members", "--http", cluster["n1"].http_addr)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for n in cluster.nodes:
        assert n.name in rows, f"`roster members` does not list {n.name}:\n{result.stdout}"
        assert "alive" in rows[n.name].lower(), rows[n.name]
        assert f"127.0.0.1:{n.bind_port}" in rows[n.name], rows[n.name]


# MARK: - tombstone collection and the stale node's reset


def test_a_node_away_longer_than_the_tombstone_grace_does_not_resurrect_what_was_deleted(request, tmp_path):
    """SPEC §4.4 across tombstone collection: n3 is killed holding `gone`; `gone` is deregistered,
    and its tombstone is collected everywhere else (grace 2 s); when n3 returns with `gone` alive,
    it must reset rather than hand `gone` back to the cluster."""
    from conftest import Cluster, tracked_nodes

    cluster = Cluster(tmp_path, tracked_nodes(request), size=3, extra_args=["--tombstone-grace", "2s"])
    try:
        cluster.start()
        n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
        ok(n1.post("/registry/register", native_instance("svc", "gone")), 201)
        ok(n1.post("/registry/register", native_instance("svc", "stays")), 201)
        wait_until(lambda: {"gone", "stays"} <= all_ids(n3), 10, "both instances to reach n3")
        n3.kill9()
        wait_member_status([n1, n2], "n3", {FAILED}, timeout=10)
        ok(n1.post("/registry/deregister", {"service_name": "svc", "instance_id": "gone"}))
        # Collection runs every 5 s with a 2 s grace: wait until n1's metric shows it happened.
        wait_until(lambda: "roster_tombstones_collected_total 1" in n1.get("/metrics").text
                   and "roster_tombstones_collected_total 1" in n2.get("/metrics").text,
                   20, "the tombstone of `gone` to be collected at n1 and n2")
        n3.start()
        cluster.wait_all_alive(timeout=15)
        wait_until(lambda: "gone" not in all_ids(n3), 10, "n3 to reset and drop `gone`")
        assert "stays" in all_ids(n3) or wait_until(lambda: "stays" in all_ids(n3), 10, "n3 to get `stays` back")
        # Give anti-entropy several rounds: `gone` must not come back anywhere.
        marker = "after-return"
        ok(n3.post("/registry/register", native_instance("svc", marker)), 201)
        wait_until(lambda: marker in all_ids(n1) and marker in all_ids(n2), 10, "a write at n3 to reach the others")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for node in (n1, n2, n3):
                assert "gone" not in all_ids(node), f"`gone` was resurrected at {node.name}"
            time.sleep(0.2)
        assert "dropped" in n3.log_text() and "tombstone grace" in n3.log_text()
    finally:
        cluster.cleanup()
