"""The health part of a chaos run: TTL checks must follow their clients through kill -9, restarts
and a cut-off (SPEC §4.6 and §4.7; Consul's complaint that services outlive their dead agents).

Before the faults start, HEALTH_INSTANCES instances of service `chaos-ttl` are registered at
random nodes through the Consul API, each with a TTL check, half of them with
DeregisterCriticalServiceAfter. A renewer thread passes every instance's check about once every
RENEW_EVERY seconds, each time at a random node, by Consul's check/pass or the native heartbeat,
and tries the other nodes in turn until one answers 200: a client with a list of endpoints. Halfway through the faults, half of the instances are abandoned.

Asserted after the last heal, against a deadline, on every node:
  * a kept instance is present and passing: no node expired a lease that was being renewed at
    other nodes, or removed it (a false critical that outlasts DeregisterCriticalServiceAfter
    would have);
  * an abandoned instance is critical, or gone if it has DeregisterCriticalServiceAfter: its
    check expired although the node that owned it may have been killed meanwhile.
And while the faults go on: no sample at a random node sees an instance critical (or gone)
while its client has had a renewal acknowledged within the TTL ("false criticals"). Also
measured: how many checks survivors took over.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

import requests

from chaos_common import HEALTH_SERVICE, ChaosFailure, ClusterNode, wait_until

HEALTH_INSTANCES = 16  # half kept, half abandoned; in each half, half deregister when critical
TTL = "4s"
TTL_SECONDS = 4.0
DEREGISTER_AFTER = "6s"
RENEW_EVERY = 0.8  # seconds between two rounds of renewals
REQUEST_TIMEOUT = (1.0, 5.0)  # connect, read


@dataclass(frozen=True)
class TTLInstance:
    iid: str
    kept: bool  # renewed to the end; else abandoned halfway through the faults
    deregisters: bool  # has DeregisterCriticalServiceAfter

    @property
    def expected(self) -> str | None:
        """Its check status on every node at the end; None: gone."""
        if self.kept:
            return "passing"
        return None if self.deregisters else "critical"

    def describe(self) -> str:
        return ("kept" if self.kept else "abandoned") + (f", deregister after {DEREGISTER_AFTER}" if self.deregisters else "")


def ttl_statuses(node: ClusterNode) -> dict[str, str]:
    """The check status of every TTL instance `node` holds, through the Consul health API."""
    resp = requests.get(node.url(f"/v1/health/service/{HEALTH_SERVICE}"), timeout=REQUEST_TIMEOUT,
                        headers={"Connection": "close"})
    assert resp.status_code == 200, f"{node.name}: /v1/health/service/{HEALTH_SERVICE} -> {resp.status_code}"
    out: dict[str, str] = {}
    for entry in resp.json():
        statuses = {c["Status"] for c in entry["Checks"] if c["CheckID"] != "serfHealth"}
        out[entry["Service"]["ID"]] = next((s for s in ("critical", "warning", "passing") if s in statuses), "none")
    return out


class HealthWorkload:
    def __init__(self, nodes: list[ClusterNode], rng: random.Random, log: Callable[[str], None],
                 fail_later: Callable[[str], None]):
        self.nodes = nodes
        self.rng = rng
        self.log = log
        self.fail_later = fail_later
        self.instances = [TTLInstance(f"ttl-{i:02d}", kept=i % 2 == 0, deregisters=i % 4 >= 2)
                          for i in range(HEALTH_INSTANCES)]
        self.stop = threading.Event()
        self.abandon_at = float("inf")
        self.renewals = 0  # acknowledged
        self.renewals_failed = 0  # attempts at a node that did not answer 200
        self.renewals_lost = 0  # no node answered 200
        self.last_renewed: dict[str, float] = {}  # instance -> when a renewal was last acknowledged
        self.samples = 0
        self.false_criticals: list[str] = []
        self.settled_seconds: float | None = None
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def renewed(self) -> list[TTLInstance]:
        """The instances being renewed now."""
        abandoned = time.monotonic() >= self.abandon_at
        return [i for i in self.instances if i.kept or not abandoned]

    # -- before the faults

    def register(self, timeout: float = 30.0) -> None:
        """Registers every instance at a random node and passes it there, then waits until every
        node shows all of them passing: from here on a critical kept instance is a false one."""
        for inst in self.instances:
            node = self.rng.choice(self.nodes)
            check = {"TTL": TTL} | ({"DeregisterCriticalServiceAfter": DEREGISTER_AFTER} if inst.deregisters else {})
            body = {"Name": HEALTH_SERVICE, "ID": inst.iid, "Address": "127.0.0.1", "Port": 1, "Check": check}
            resp = requests.put(node.url("/v1/agent/service/register"), json=body, timeout=REQUEST_TIMEOUT)
            assert resp.status_code == 200, f"register {inst.iid} at {node.name}: {resp.status_code} {resp.text[:200]!r}"
            resp = requests.put(node.url(f"/v1/agent/check/pass/service:{inst.iid}"), timeout=REQUEST_TIMEOUT)
            assert resp.status_code == 200, f"pass {inst.iid} at {node.name}: {resp.status_code} {resp.text[:200]!r}"
        wanted = {i.iid: "passing" for i in self.instances}
        wait_until(lambda: all(ttl_statuses(n) == wanted for n in self.nodes), timeout,
                   f"{len(wanted)} TTL instances passing on every node", interval=0.1)
        self.log(f"{len(self.instances)} TTL-checked instances registered (TTL {TTL}) and passing on every node")

    # -- during the faults

    def start(self, abandon_at: float) -> None:
        self.abandon_at = abandon_at
        self.thread = threading.Thread(target=self._run, name="ttl-renewer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                for inst in self.renewed():
                    self._renew(inst)
                self._sample()
                self.stop.wait(RENEW_EVERY)
        except BaseException as exc:  # noqa: BLE001 - reported by the run
            self.error = exc

    def _renew(self, inst: TTLInstance) -> None:
        """Renews at a random node, then at the others in turn until one answers 200."""
        nodes = list(self.nodes)
        self.rng.shuffle(nodes)
        for node in nodes:
            try:
                if self.rng.random() < 0.5:
                    resp = requests.put(node.url(f"/v1/agent/check/pass/service:{inst.iid}"),
                                        timeout=REQUEST_TIMEOUT, headers={"Connection": "close"})
                else:
                    resp = requests.post(node.url("/registry/heartbeat"), timeout=REQUEST_TIMEOUT,
                                         json={"service_name": HEALTH_SERVICE, "instance_id": inst.iid},
                                         headers={"Connection": "close"})
                if resp.status_code == 200:
                    self.renewals += 1
                    self.last_renewed[inst.iid] = time.monotonic()
                    return
            except requests.RequestException:
                pass  # down or restarting
            self.renewals_failed += 1
        self.renewals_lost += 1

    def _sample(self) -> None:
        """One random running node's view: an instance renewed within its TTL must be passing."""
        running = [n for n in self.nodes if n.running]
        if not running:
            return
        node = self.rng.choice(running)
        asked = time.monotonic()
        renewed = self.renewed()  # before the read: an instance abandoned during it may be critical
        try:
            statuses = ttl_statuses(node)
        except (requests.RequestException, AssertionError):
            return  # restarting
        self.samples += 1
        for inst in renewed:
            status = statuses.get(inst.iid)
            recently = asked - self.last_renewed.get(inst.iid, float("-inf")) < TTL_SECONDS
            if status != "passing" and recently:
                self.false_criticals.append(f"{inst.iid} ({inst.describe()}) was {status or 'gone'} at {node.name}")
                self.log(f"note: {self.false_criticals[-1]} while being renewed")

    # -- after the last heal

    def wait_settled(self, healed: float, timeout: float) -> None:
        """Every node shows every instance as `TTLInstance.expected`, while the renewer goes on."""
        wanted = {i.iid: i.expected for i in self.instances if i.expected is not None}
        last: dict[str, dict[str, str]] = {}

        def settled() -> bool:
            last.clear()
            last.update({n.name: ttl_statuses(n) for n in self.nodes})
            return all(view == wanted for view in last.values())

        try:
            wait_until(settled, timeout, "every TTL check to settle on every node", interval=0.1)
        except AssertionError:
            raise ChaosFailure(f"TTL checks did not settle within {timeout:.0f}s of the heal: "
                               f"{self.differences(last, wanted)}") from None
        self.settled_seconds = time.monotonic() - healed
        self.log(f"TTL checks settled on every node {self.settled_seconds:.2f}s after the heal")

    def differences(self, views: dict[str, dict[str, str]], wanted: dict[str, str]) -> str:
        out = []
        for inst in self.instances:
            wrong = {name: view.get(inst.iid, "gone") for name, view in views.items()
                     if view.get(inst.iid) != wanted.get(inst.iid)}
            if wrong:
                out.append(f"{inst.iid} ({inst.describe()}) should be {inst.expected or 'gone'}, is {wrong}")
        return "; ".join(out) or "no difference in the last read"

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise ChaosFailure(f"the TTL renewer crashed: {self.error!r}")

    def takeovers(self) -> int:
        """Checks that survivors took over, from the nodes' logs."""
        pattern = re.compile(r"took over the checks of (\d+) instance")
        return sum(int(m) for n in self.nodes for m in pattern.findall(n.log_text()))

    def summary(self) -> str:
        kept = sum(i.kept for i in self.instances)
        return (f"  TTL checks: {kept} kept passing and {len(self.instances) - kept} abandoned critical or "
                f"deregistered on every node {_s(self.settled_seconds)} after the heal; "
                f"{self.takeovers()} taken over by survivors; renewals: {self.renewals} acknowledged, "
                f"{self.renewals_failed} tries at a node that was down, {self.renewals_lost} with no node up; "
                f"false criticals in {len(self.false_criticals)} of {self.samples} samples")


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}s"
