"""Discovery across a real 3-node mTLS cluster: DNS (SPEC §3), blocking queries (SPEC §2b) and
resolution (`/registry/resolve`).

Writes go to one node and reads to another, so every assertion also covers replication. DNS is
asked two ways: with the real `dig` (as a person would) and with dnspython (as a program would),
over UDP and TCP. Nothing sleeps to synchronise: conditions are polled against deadlines, and the
one "it must NOT have happened yet" check waits on a thread join with a timeout.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import threading
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from conftest import wait_until

DOMAIN = "roster"
REPLICATION_TIMEOUT = 5.0

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig is not installed (bind9-dnsutils)")


# MARK: - helpers


def consul_register(node, iid: str, address: str, tags: list[str], service: str = "web", port: int = 80, **extra) -> None:
    body = {"Name": service, "ID": iid, "Address": address, "Port": port, "Tags": tags, **extra}
    resp = node.put("/v1/agent/service/register", body)
    assert resp.status_code == 200, f"register {iid} at {node.name}: {resp.status_code} {resp.text[:300]!r}"


def dig(node, *args: str, timeout: float = 10) -> str:
    """Runs the real `dig` against the node's DNS port and returns its stdout."""
    cmd = ["dig", "@127.0.0.1", "-p", str(node.dns_port), "+time=2", "+tries=1", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{' '.join(cmd)} -> {result.returncode}\n{result.stdout}{result.stderr}"
    return result.stdout


def dig_short(node, *args: str) -> list[str]:
    return sorted(line for line in dig(node, "+short", *args).splitlines() if line and not line.startswith(";"))


def dig_sections(text: str) -> dict[str, list[list[str]]]:
    """Splits dig's full output into sections (ANSWER, AUTHORITY, ADDITIONAL) of whitespace-split records."""
    sections: dict[str, list[list[str]]] = collections.defaultdict(list)
    current = None
    for line in text.splitlines():
        m = re.match(r";; (\w+) SECTION:", line)
        if m:
            current = m.group(1)
            continue
        if not line.strip() or line.startswith(";"):
            if not line.strip():
                current = None
            continue
        if current:
            sections[current].append(line.split())
    return sections


def dig_header(text: str) -> tuple[str, set[str]]:
    """(status, flags) from dig's `->>HEADER<<-` and `;; flags:` lines."""
    status = re.search(r"status: (\w+)", text)
    flags = re.search(r";; flags: ([^;]*);", text)
    assert status and flags, f"no header in dig output:\n{text}"
    return status.group(1), set(flags.group(1).split())


def resolver_for(node) -> dns.resolver.Resolver:
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = node.dns_port
    r.timeout = 2
    r.lifetime = 5
    r.cache = None
    return r


def ask(node, name: str, rdtype: str, tcp: bool) -> dns.message.Message:
    """One raw query, UDP or TCP, with no retry over TCP on TC (so that the bit can be seen)."""
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=node.dns_port, timeout=5)
    return dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=5)


def a_addresses(msg: dns.message.Message, section: list | None = None) -> list[str]:
    rrsets = msg.answer if section is None else section
    return sorted(rd.address for rrset in rrsets if rrset.rdtype == dns.rdatatype.A for rd in rrset)


def web_instances(cluster, count: int = 3):
    """web-1..web-N at n1 with 10.0.0.1..N; odd ones tagged v1, even ones v2. Waits until n3 has them all."""
    addrs = {}
    for i in range(1, count + 1):
        consul_register(cluster["n1"], f"web-{i}", f"10.0.0.{i}", ["v1" if i % 2 else "v2", "http"])
        addrs[f"web-{i}"] = f"10.0.0.{i}"
    wait_until(
        lambda: set(dig_short(cluster["n3"], f"web.service.{DOMAIN}")) == set(addrs.values()),
        REPLICATION_TIMEOUT,
        f"n3's DNS to answer {sorted(addrs.values())}",
    )
    return addrs


# MARK: - DNS: dig


def test_dig_answers_services_tags_srv_nodes_and_nxdomain(cluster):
    addrs = web_instances(cluster, 3)
    n3 = cluster["n3"]

    # NAME.service: exactly the healthy addresses.
    assert dig_short(n3, f"web.service.{DOMAIN}") == sorted(addrs.values())

    # TAG.NAME.service narrows by tag.
    assert dig_short(n3, f"v1.web.service.{DOMAIN}") == ["10.0.0.1", "10.0.0.3"]
    assert dig_short(n3, f"v2.web.service.{DOMAIN}") == ["10.0.0.2"]

    # _NAME._tcp.service SRV: one record per instance, with their A records in the additional section.
    out = dig(n3, f"_web._tcp.service.{DOMAIN}", "SRV")
    status, _ = dig_header(out)
    assert status == "NOERROR", out
    sections = dig_sections(out)
    srv = [r for r in sections["ANSWER"] if r[3] == "SRV"]
    assert len(srv) == 3, f"expected 3 SRV answers:\n{out}"
    assert all(r[6] == "80" for r in srv), f"SRV port should be 80:\n{out}"
    targets = {r[7].lower() for r in srv}
    additional_a = {r[0].lower(): r[4] for r in sections["ADDITIONAL"] if r[3] == "A"}
    assert targets <= set(additional_a), f"every SRV target needs an A record in ADDITIONAL:\n{out}"
    assert sorted(additional_a[t] for t in targets) == sorted(addrs.values()), out

    # NODE.node answers the node's address.
    assert dig_short(n3, f"n2.node.{DOMAIN}") == ["127.0.0.1"]

    # An unknown name: NXDOMAIN with an SOA in the authority section.
    for name in (f"nosuch.service.{DOMAIN}", f"n9.node.{DOMAIN}", f"what.ever.{DOMAIN}"):
        out = dig(n3, name)
        status, _ = dig_header(out)
        assert status == "NXDOMAIN", f"{name}:\n{out}"
        soa = [r for r in dig_sections(out)["AUTHORITY"] if r[3] == "SOA"]
        assert len(soa) == 1, f"{name}: NXDOMAIN without an SOA:\n{out}"


# MARK: - DNS: dnspython over UDP and TCP


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_dnspython_answers_the_same_over_udp_and_tcp(cluster, tcp):
    addrs = web_instances(cluster, 3)
    n3 = cluster["n3"]
    r = resolver_for(n3)

    ans = r.resolve(f"web.service.{DOMAIN}", "A", tcp=tcp)
    assert sorted(rd.address for rd in ans) == sorted(addrs.values())

    ans = r.resolve(f"v1.web.service.{DOMAIN}", "A", tcp=tcp)
    assert sorted(rd.address for rd in ans) == ["10.0.0.1", "10.0.0.3"]

    msg = ask(n3, f"_web._tcp.service.{DOMAIN}", "SRV", tcp)
    assert msg.rcode() == dns.rcode.NOERROR
    srv = [rd for rrset in msg.answer if rrset.rdtype == dns.rdatatype.SRV for rd in rrset]
    assert len(srv) == 3 and all(rd.port == 80 for rd in srv), msg.to_text()
    extra = {rrset.name.to_text().lower(): [rd.address for rd in rrset] for rrset in msg.additional if rrset.rdtype == dns.rdatatype.A}
    targets = {rd.target.to_text().lower() for rd in srv}
    assert targets <= set(extra), f"SRV targets without A records in ADDITIONAL:\n{msg.to_text()}"
    assert sorted(a for t in targets for a in extra[t]) == sorted(addrs.values())

    ans = r.resolve(f"n2.node.{DOMAIN}", "A", tcp=tcp)
    assert [rd.address for rd in ans] == ["127.0.0.1"]

    msg = ask(n3, f"nosuch.service.{DOMAIN}", "A", tcp)
    assert msg.rcode() == dns.rcode.NXDOMAIN, msg.to_text()
    assert [rrset.rdtype for rrset in msg.authority] == [dns.rdatatype.SOA], msg.to_text()
    with pytest.raises(dns.resolver.NXDOMAIN):
        r.resolve(f"nosuch.service.{DOMAIN}", "A", tcp=tcp)


# MARK: - DNS: only healthy instances


def test_an_instance_with_a_failing_ttl_check_is_not_answered_until_it_passes(cluster):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    consul_register(n1, "web-ok", "10.0.0.1", ["v1"])
    consul_register(n1, "web-ttl", "10.0.0.2", ["v1"], Check={"TTL": "30s"})
    # Both replicated to n3 (the catalog lists them), but DNS answers only the healthy one.
    wait_until(
        lambda: {s["ServiceID"] for s in n3.get("/v1/catalog/service/web").json()} == {"web-ok", "web-ttl"},
        REPLICATION_TIMEOUT,
        "both instances in n3's catalog",
    )
    checks = n3.get("/v1/health/checks/web").json()
    assert {c["CheckID"]: c["Status"] for c in checks}.get("service:web-ttl") == "critical", checks
    assert dig_short(n3, f"web.service.{DOMAIN}") == ["10.0.0.1"]
    assert sorted(rd.address for rd in resolver_for(n3).resolve(f"web.service.{DOMAIN}", "A")) == ["10.0.0.1"]
    srv = dig_short(n3, f"_web._tcp.service.{DOMAIN}", "SRV")
    assert len(srv) == 1, srv

    # Passing the TTL check at ANOTHER node than the one it was registered at.
    resp = n2.put("/v1/agent/check/pass/service:web-ttl?note=ok")
    assert resp.status_code == 200, f"{resp.status_code} {resp.text[:300]!r}"
    wait_until(
        lambda: dig_short(n3, f"web.service.{DOMAIN}") == ["10.0.0.1", "10.0.0.2"],
        REPLICATION_TIMEOUT,
        "web-ttl in n3's DNS after its TTL check passed at n2",
    )


# MARK: - DNS: truncation


def test_a_big_answer_is_truncated_over_udp_and_complete_over_tcp(cluster):
    n1, n3 = cluster["n1"], cluster["n3"]
    for i in range(60):
        consul_register(n1, f"web-{i:02d}", f"10.0.{i // 250}.{i % 250 + 1}", [])
    expected = sorted(f"10.0.{i // 250}.{i % 250 + 1}" for i in range(60))
    wait_until(
        lambda: len(n3.get("/v1/health/service/web?passing").json()) == 60,
        REPLICATION_TIMEOUT,
        "60 passing web instances at n3",
    )

    # dig over UDP with a 512-byte limit: +ignore keeps dig from retrying over TCP, so TC shows.
    out = dig(n3, "+bufsize=512", "+noedns", "+ignore", f"web.service.{DOMAIN}")
    status, flags = dig_header(out)
    assert status == "NOERROR", out
    assert "tc" in flags, f"60 A records cannot fit in 512 bytes, TC must be set:\n{out}"
    udp_answers = [r for r in dig_sections(out)["ANSWER"] if r[3] == "A"]
    assert len(udp_answers) < 60, out

    # Without +ignore dig itself retries over TCP on TC and gets them all.
    assert dig_short(n3, "+bufsize=512", "+noedns", f"web.service.{DOMAIN}") == expected

    # Over TCP all 60 come at once.
    out = dig(n3, "+tcp", f"web.service.{DOMAIN}")
    _, flags = dig_header(out)
    assert "tc" not in flags, out
    assert sorted(r[4] for r in dig_sections(out)["ANSWER"] if r[3] == "A") == expected

    # The same with dnspython: UDP without EDNS is truncated, TCP is complete.
    udp = ask(n3, f"web.service.{DOMAIN}", "A", tcp=False)
    assert udp.flags & dns.flags.TC, udp.to_text()
    assert len(a_addresses(udp)) < 60
    tcp = ask(n3, f"web.service.{DOMAIN}", "A", tcp=True)
    assert not tcp.flags & dns.flags.TC
    assert a_addresses(tcp) == expected
    # And the resolver retries over TCP by itself on TC.
    assert sorted(rd.address for rd in resolver_for(n3).resolve(f"web.service.{DOMAIN}", "A")) == expected


# MARK: - blocking queries across nodes (py-consul)


class BlockingCall:
    """`health.service(name, index=..., wait=...)` on a thread; `done` is set when it returns."""

    def __init__(self, client, service: str, index: str, wait: str = "30s"):
        self.result = None
        self.error: BaseException | None = None
        self.returned_at: float | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(client, service, index, wait), daemon=True)
        self.thread.start()

    def _run(self, client, service, index, wait):
        try:
            self.result = client.health.service(service, index=index, wait=wait)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.returned_at = time.monotonic()
            self.done.set()

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)


def ids_of(nodes: list[dict]) -> set[str]:
    return {entry["Service"]["ID"] for entry in nodes}


def test_a_blocking_query_at_n3_wakes_on_a_write_at_n1_to_its_service_only(cluster):
    n1, n3 = cluster["n1"], cluster["n3"]
    c3 = n3.consul()
    consul_register(n1, "web-1", "10.0.0.1", ["v1"])
    # Wait through another read path, so that this test is about waking, not about the first-change
    # index collision covered by the two tests below.
    wait_until(
        lambda: {x["ServiceID"] for x in n3.get("/v1/catalog/service/web").json()} == {"web-1"},
        REPLICATION_TIMEOUT,
        "web-1 in n3's catalog",
    )
    index, nodes = c3.health.service("web")
    assert ids_of(nodes) == {"web-1"}

    # 1. A write to web at n1 wakes the watcher at n3 within 1 s.
    call = BlockingCall(c3, "web", index)
    # The call must really be blocked before the write, or the test proves nothing.
    assert not call.wait(0.5), f"the blocking query returned at once: {call.result!r} {call.error!r}"
    consul_register(n1, "web-2", "10.0.0.2", ["v1"])
    written = time.monotonic()
    assert call.wait(5), "the blocking query at n3 did not return after a write to web at n1"
    assert call.error is None, repr(call.error)
    assert call.returned_at - written < 1.0, f"woke {call.returned_at - written:.3f}s after the write"
    index2, nodes = call.result
    assert int(index2) > int(index)
    assert ids_of(nodes) == {"web-1", "web-2"}

    # 2. A write at n1 to ANOTHER service does not wake it.
    call = BlockingCall(c3, "web", index2)
    assert not call.wait(0.5), f"returned before any write: {call.result!r} {call.error!r}"
    consul_register(n1, "api-1", "10.0.1.1", [], service="api")
    wait_until(lambda: c3.health.service("api")[1], REPLICATION_TIMEOUT, "api-1 at n3")
    assert not call.wait(2.0), f"a write to 'api' woke a blocking query on 'web': {call.result!r}"

    # 3. Then a write to web unblocks it promptly.
    consul_register(n1, "web-3", "10.0.0.3", ["v2"])
    written = time.monotonic()
    assert call.wait(5), "the blocking query did not return after a write to web"
    assert call.error is None, repr(call.error)
    assert call.returned_at - written < 1.0, f"woke {call.returned_at - written:.3f}s after the write"
    index3, nodes = call.result
    assert int(index3) > int(index2)
    assert ids_of(nodes) == {"web-1", "web-2", "web-3"}


# MARK: - resolution


def native_register(node, iid: str, host: str, service: str = "web", **fields) -> None:
    body = {"service_name": service, "instance_id": iid, "host": host, "port": 8080, **fields}
    resp = node.post("/registry/register", body)
    assert resp.status_code in (200, 201), f"register {iid}: {resp.status_code} {resp.text[:300]!r}"


def resolve(node, service: str, **params) -> dict:
    resp = node.get(f"/registry/resolve/{service}", params=params)
    assert resp.status_code == 200, f"resolve {service} {params}: {resp.status_code} {resp.text[:300]!r}"
    return resp.json()


def wait_healthy(node, service: str, count: int) -> None:
    wait_until(
        lambda: len(node.get(f"/registry/services/{service}?healthy=true").json()["instances"]) == count,
        REPLICATION_TIMEOUT,
        f"{count} healthy {service} instances at {node.name}",
    )


def test_round_robin_at_n2_spreads_evenly_over_instances_registered_at_n1(cluster):
    n1, n2 = cluster["n1"], cluster["n2"]
    for i in range(1, 4):
        consul_register(n1, f"web-{i}", f"10.0.0.{i}", [])
    wait_healthy(n2, "web", 3)
    picks = collections.Counter(resolve(n2, "web", strategy="round_robin")["instance_id"] for _ in range(30))
    assert picks == {"web-1": 10, "web-2": 10, "web-3": 10}, picks


def test_region_aware_keeps_to_the_callers_zone(cluster):
    n1, n2 = cluster["n1"], cluster["n2"]
    layout = {
        "web-a1": ("eu", "eu-1a"),
        "web-a2": ("eu", "eu-1a"),
        "web-b1": ("eu", "eu-1b"),
        "web-c1": ("us", "us-1a"),
    }
    for i, (iid, (region, zone)) in enumerate(sorted(layout.items()), start=1):
        native_register(n1, iid, f"10.0.0.{i}", region=region, zone=zone)
    wait_healthy(n2, "web", 4)

    # In-zone instances exist: only they are picked, in turn.
    picks = collections.Counter(
        resolve(n2, "web", strategy="region_aware", region="eu", zone="eu-1a")["instance_id"] for _ in range(20)
    )
    assert picks == {"web-a1": 10, "web-a2": 10}, picks
    picks = collections.Counter(
        resolve(n2, "web", strategy="region_aware", region="eu", zone="eu-1b")["instance_id"] for _ in range(5)
    )
    assert picks == {"web-b1": 5}, picks

    # A zone with no instance falls back to the caller's region, never to another region.
    picks = collections.Counter(
        resolve(n2, "web", strategy="region_aware", region="us", zone="us-1c")["instance_id"] for _ in range(5)
    )
    assert picks == {"web-c1": 5}, picks
    picks = collections.Counter(
        resolve(n2, "web", strategy="region_aware", region="eu", zone="eu-1z")["instance_id"] for _ in range(9)
    )
    assert set(picks) == {"web-a1", "web-a2", "web-b1"}, picks


# MARK: - the first change to a fresh node


def test_a_blocking_query_started_on_an_empty_service_wakes_on_its_first_registration(cluster):
    """The usual Consul client loop: read (empty), then block on the index that read returned.

    Every node is fresh, so the read at n3 returns the index it reports for "nothing yet"; the
    registration at n1 is the first change n3 applies. The answer changes, so the query must return.
    """
    n1, n3 = cluster["n1"], cluster["n3"]
    c3 = n3.consul()
    index, nodes = c3.health.service("web")
    assert nodes == []
    call = BlockingCall(c3, "web", index, wait="10s")
    assert not call.wait(0.5), f"the blocking query returned at once: {call.result!r} {call.error!r}"
    consul_register(n1, "web-1", "10.0.0.1", ["v1"])
    written = time.monotonic()
    assert call.wait(12), "the blocking query did not return at all"
    assert call.error is None, repr(call.error)
    index2, nodes = call.result
    waited = call.returned_at - written
    assert ids_of(nodes) == {"web-1"} and waited < 1.0, (
        f"index {index} → {index2} after {waited:.2f}s with {sorted(ids_of(nodes))}: the first registration "
        f"did not wake a blocking query on index {index} (or it woke with a stale answer)"
    )


def test_a_read_before_the_first_registration_does_not_pin_a_stale_answer(cluster):
    """`GET /v1/health/service/web` at a fresh n3, then a registration at n1: n3 must list it."""
    n1, n3 = cluster["n1"], cluster["n3"]
    empty = n3.get("/v1/health/service/web")
    assert empty.status_code == 200 and empty.json() == []
    consul_register(n1, "web-1", "10.0.0.1", ["v1"])
    # Replicated: other read paths at n3 see it.
    wait_until(
        lambda: {x["ServiceID"] for x in n3.get("/v1/catalog/service/web").json()} == {"web-1"},
        REPLICATION_TIMEOUT,
        "web-1 in n3's catalog",
    )
    seen = {}

    def listed():
        resp = n3.get("/v1/health/service/web")
        seen["index"], seen["ids"] = resp.headers.get("X-Consul-Index"), ids_of(resp.json())
        return seen["ids"] == {"web-1"}

    try:
        wait_until(listed, 3, "web-1 in n3's /v1/health/service/web")
    except AssertionError:
        raise AssertionError(
            f"n3's catalog lists web-1 but /v1/health/service/web still answers {sorted(seen['ids'])} "
            f"with X-Consul-Index {seen['index']} (the same index as the empty answer before the registration: "
            f"{empty.headers.get('X-Consul-Index')})"
        ) from None
