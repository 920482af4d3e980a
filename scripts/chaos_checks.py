"""What a chaos run asserts: right after each restart, that the node kept what it acknowledged;
at the end, that the registries and the membership converge, stay converged, and agree with the
writers' ledger (the rules are in chaos.py's docstring). A mixin of `ChaosRun`."""

from __future__ import annotations

import os
import time
from typing import Any

import requests

from chaos_common import ALIVE, STATUS_NAMES, ChaosFailure, ClusterNode, registry_of, statuses_of, wait_until
from chaos_ledger import expected_text, matches, show

CONVERGE_TIMEOUT = float(os.environ.get("ROSTER_CHAOS_CONVERGE_TIMEOUT", "90"))


class EndChecks:
    """Needs the run's `cluster`, `ledger`, `report`, `rng`, `probes`, `maybe_probes`, `t0`,
    `killed_at`, `log`, `fail_later` and `replay_hint`."""

    def check_durable(self, node: ClusterNode) -> None:
        """Right after a restart: `node` holds every write it acknowledged before it was killed,
        or a later version of that instance. (What peers send it can only move an instance
        forward, so this is sound while writes go on; and unlike the final check it cannot be
        masked by anti-entropy refilling what the node itself lost.)

        kill -9 leaves the page cache alone, so this proves the write reached the kernel before
        the answer, not that it was fsync'd: that would need a power-loss model (the simulator)."""
        killed = self.killed_at.get(node.name)
        if killed is None:
            return
        try:  # the registry first, the ledger after: every op it may show is in the ledger by then
            reg = registry_of(node)
        except Exception as exc:  # noqa: BLE001 - reported as a failure: it answered /health
            self.fail_later(f"{node.name}: cannot read its registry right after its restart: {exc!r}")
            return
        with self.ledger.lock:
            histories = [(h.instance, list(h.ops)) for h in self.ledger.instances.values()]
        checked = 0
        for iid, ops in histories:
            mine = [i for i, op in enumerate(ops) if op.node == node.name and op.outcome == "acked" and op.done <= killed]
            if not mine:
                continue
            first = mine[-1]
            allowed = [ops[first]] + [op for op in ops[first + 1:] if op.outcome in ("acked", "unknown", "pending")]
            checked += 1
            if not any(matches(op, reg.get(iid)) for op in allowed):
                self.report.lost_at_restart += 1
                self.fail_later(
                    f"{node.name} lost a write it acknowledged before its kill -9: instance {iid} is "
                    f"{show(reg.get(iid))} right after the restart, expected {expected_text(ops[first])}"
                    + (f" or a later version ({len(allowed) - 1} later op(s))" if len(allowed) > 1 else "")
                    + "\n    " + "\n    ".join(op.describe(self.t0) for op in ops[max(0, first - 2):]))
        self.report.durability_checked += checked

    def tally(self) -> None:
        ops = self.ledger.all_ops()
        r = self.report
        r.ops = len(ops)
        r.acked = sum(op.outcome == "acked" for op in ops)
        r.acked_registers = sum(op.outcome == "acked" and op.kind == "register" for op in ops)
        r.acked_deregisters = sum(op.outcome == "acked" and op.kind == "deregister" for op in ops)
        r.rejected = sum(op.outcome == "rejected" for op in ops)
        r.refused = sum(op.outcome == "refused" for op in ops)
        r.unknown = sum(op.outcome == "unknown" for op in ops)
        r.instances = len(self.ledger.instances)
        odd = [op for op in ops if op.outcome == "rejected" and not (op.kind == "deregister" and op.detail.startswith("404"))]
        if odd:
            self.fail_later("unexpected 4xx answers: " + "; ".join(f"{op.instance}: {op.describe(self.t0)}" for op in odd[:5]))

    def wait_converged(self, healed: float) -> None:
        assert self.cluster is not None
        nodes = self.cluster.nodes
        last: dict[str, Any] = {}

        def identical():
            regs = {n.name: registry_of(n) for n in nodes}
            last.clear()
            last.update(regs)
            first = regs[nodes[0].name]
            return all(r == first for r in regs.values())

        try:
            wait_until(identical, CONVERGE_TIMEOUT, "identical registries", interval=0.1)
        except AssertionError as exc:
            raise ChaosFailure(f"the registries did not converge within {CONVERGE_TIMEOUT:.0f}s of the heal: "
                               f"{self.differences(last) or exc}; {self.replay_hint()}") from None
        self.report.converge_seconds = time.monotonic() - healed
        self.log(f"registries identical on all {len(nodes)} nodes {self.report.converge_seconds:.2f}s after the heal "
                 f"({len(last[nodes[0].name])} instances)")

    def differences(self, regs: dict[str, dict]) -> str:
        if not regs:
            return ""
        names = list(regs)
        ref = names[0]
        out = []
        for name in names[1:]:
            a, b = regs[ref], regs[name]
            only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
            diff = sorted(k for k in set(a) & set(b) if a[k] != b[k])
            if only_a or only_b or diff:
                out.append(f"{name} vs {ref}: {len(only_b)} only at {name} {only_b[:5]}, {len(only_a)} only at {ref} "
                           f"{only_a[:5]}, {len(diff)} differ " +
                           ", ".join(f"{k}: {show(a[k])} vs {show(b[k])}" for k in diff[:3]))
        return "; ".join(out) + f"; sizes {({n: len(r) for n, r in regs.items()})}"

    def wait_members(self, healed: float) -> None:
        assert self.cluster is not None
        names = set(self.cluster.names)
        last: dict[str, Any] = {}

        def all_alive():
            last.clear()
            for o in self.cluster.nodes:
                last[o.name] = statuses_of(o)
            return all(all(v.get(n) == ALIVE for n in names) for v in last.values())

        try:
            wait_until(all_alive, CONVERGE_TIMEOUT, "every node to see every node alive", interval=0.1)
        except AssertionError:
            readable = {o: {k: STATUS_NAMES.get(v, v) for k, v in st.items()} for o, st in last.items()}
            raise ChaosFailure(f"membership did not converge within {CONVERGE_TIMEOUT:.0f}s of the heal: "
                               f"{readable}; {self.replay_hint()}") from None
        self.report.members_seconds = time.monotonic() - healed
        self.log(f"every node sees every node alive {self.report.members_seconds:.2f}s after the heal")

    def check_stable(self) -> None:
        """A marker written at one node reaches all: replication has run again since convergence,
        and the registries must still be identical (nothing resurrected by a later round)."""
        assert self.cluster is not None
        nodes = self.cluster.nodes
        at = nodes[self.rng.randrange(len(nodes))]
        resp = requests.post(at.url("/registry/register"), json={
            "service_name": "chaos-marker", "instance_id": "chaos-marker", "host": "127.0.0.1", "port": 1},
            timeout=10)
        assert resp.status_code in (200, 201), f"marker at {at.name}: {resp.status_code} {resp.text[:200]!r}"
        wait_until(lambda: all("chaos-marker" in registry_of(n) for n in nodes), 30,
                   f"the marker written at {at.name} to reach every node")
        regs = {n.name: registry_of(n) for n in nodes}
        first = regs[nodes[0].name]
        if not all(r == first for r in regs.values()):
            raise ChaosFailure(f"the registries diverged again after converging: {self.differences(regs)}; "
                               f"{self.replay_hint()}")
        self.final = {n: {k: v for k, v in r.items() if k != "chaos-marker"} for n, r in regs.items()}

    def check_ledger(self) -> None:
        """Every node against the ledger: see the module docstring."""
        assert self.cluster is not None
        problems: list[str] = []
        lost = resurrected = phantom = 0
        with self.ledger.lock:
            histories = list(self.ledger.instances.values())
        known = {h.instance for h in histories} | self.probes | self.maybe_probes
        for name, reg in self.final.items():
            for iid in sorted(self.probes - set(reg)):
                lost += 1
                problems.append(f"lost acknowledged write: {name}: probe {iid}, written during a cut, is absent")
            for iid in sorted(set(reg) - known):
                phantom += 1
                problems.append(f"{name}: instance {iid} is {show(reg[iid])}, but no writer ever wrote it")
        for h in histories:
            states = h.acceptable()
            acked = h.acked_state()
            bad_nodes = [(name, reg.get(h.instance)) for name, reg in self.final.items()
                         if not any(matches(s, reg.get(h.instance)) for s in states)]
            if not bad_nodes:
                continue
            if acked is None:
                phantom += 1
                kind = "phantom (never acknowledged)"
            elif acked.kind == "deregister":
                resurrected += 1
                kind = "resurrected after an acknowledged deregistration"
            else:
                lost += 1
                kind = "lost acknowledged write"
            expected = " or ".join(expected_text(s) for s in states)
            where = ", ".join(f"{n}: {show(obs)}" for n, obs in bad_nodes)
            recent = "\n      ".join(op.describe(self.t0) for op in h.ops[-4:])
            problems.append(f"{kind}: instance {h.instance} (service {h.service}) should be {expected}; "
                            f"but at {where}\n    last operations:\n      {recent}")
        self.report.lost, self.report.resurrected, self.report.phantom = lost, resurrected, phantom
        self.log(f"ledger check: {len(histories)} instances on {len(self.final)} nodes; lost {lost}, "
                 f"resurrected {resurrected}, phantoms {phantom}")
        if problems:
            raise ChaosFailure(
                f"{len(problems)} instance(s) violate the ledger ({lost} lost, {resurrected} resurrected, "
                f"{phantom} phantom); {self.replay_hint()}:\n  " + "\n  ".join(problems[:20]))
