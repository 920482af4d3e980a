"""Verification of a cut-off while it lasts: that the cluster sees it, that no write crosses it,
and how long the node takes to rejoin after the heal. A mixin of `ChaosRun`."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import requests

from chaos_common import ALIVE, FAILED, STATUS_NAMES, ClusterNode, statuses_of

ISOLATION_TIMEOUT = 30.0  # for the cut to show in every node's member list
PROBE_WINDOW = 3.0  # seconds a write must not cross a cut (normal propagation: well under 1 s)


class CutWatching:
    """Needs the run's `cluster`, `net`, `report`, `rng`, `log` and `fail_later`; keeps the
    probe instances it writes in `probes` (acknowledged) and `maybe_probes` (perhaps written)."""

    def _watch_isolation(self, node: ClusterNode, stop: threading.Event) -> None:
        """Verifies a cut, until it is healed or the faults stop.

        1. Every other running node comes to see `node` failed (a failure if not within
           ISOLATION_TIMEOUT).
        2. Then nothing crosses the cut: an instance written at `node` reaches no other node, and
           one written at another node does not reach `node`, for PROBE_WINDOW seconds (normal
           propagation takes well under a second). Both must arrive after the heal.
        3. `node` comes to see no other node alive: measured, not required, and only on the
           process that was cut (a cut-off node without confirmations from peers is slow to
           declare them failed, which is the point of Lifeguard-style suspicion).
        """
        assert self.cluster is not None and self.net is not None
        started = time.monotonic()
        pid = node.proc.pid if node.running else None
        outside = inside = None  # seconds until each view held
        probed = False
        views: dict[str, Any] = {}

        def cut_active() -> bool:
            return self.net.cut_node == node.name and not stop.is_set()

        while cut_active():
            same_process = node.running and node.proc.pid == pid
            views = {}
            peers_done = True
            answered = 0  # other nodes that answered: one restarting right now is skipped
            for o in self.cluster.nodes:
                if not o.running or (o is node and (inside is not None or not same_process)):
                    continue
                try:
                    st = statuses_of(o)
                except Exception as exc:  # noqa: BLE001 - a node that is restarting
                    views[o.name] = type(exc).__name__
                    continue
                if o is node:
                    views[o.name] = {k: STATUS_NAMES.get(v, v) for k, v in st.items() if k != node.name}
                    if all(v != ALIVE for k, v in st.items() if k != node.name):
                        inside = time.monotonic() - started
                        self.report.isolated_view_seconds.append(inside)
                        self.log(f"{node.name} sees every other node as not alive after {inside:.2f}s")
                else:
                    views[o.name] = STATUS_NAMES.get(st.get(node.name), st.get(node.name))
                    # None: a node restarted since the cut may never have heard of it.
                    peers_done = peers_done and st.get(node.name) in (FAILED, None)
                    answered += 1
            if not cut_active():
                break
            if peers_done and answered and outside is None:
                outside = time.monotonic() - started
                self.report.isolation_seconds.append(outside)
                self.log(f"every other node sees {node.name} failed after {outside:.2f}s")
            if outside is not None and not probed:
                probed = True
                self._probe_cut(node, cut_active)
            if outside is not None and inside is not None:
                return
            if outside is None and time.monotonic() - started > ISOLATION_TIMEOUT:
                self.fail_later(f"the cut-off of {node.name} did not show within {ISOLATION_TIMEOUT:.0f}s: "
                                f"the other nodes see it as {views}; rules:\n{self.net.rules()}")
                return
            time.sleep(0.25)
        if outside is None:
            self.log(f"note: the cut of {node.name} ended before every other node saw it failed: {views}")
        elif inside is None:
            self.log(f"note: {node.name} still saw some node alive when its cut ended "
                     f"({time.monotonic() - started:.1f}s): {views.get(node.name)}")

    def _probe_cut(self, node: ClusterNode, cut_active: Callable[[], bool]) -> None:
        assert self.cluster is not None
        others = [o for o in self.cluster.nodes if o is not node and o.running]
        if not others or not node.running:
            return
        self.probe_count += 1
        inside_id = f"chaos-probe-{self.probe_count}-in-{node.name}"
        other = others[self.rng.randrange(len(others))]
        outside_id = f"chaos-probe-{self.probe_count}-at-{other.name}"
        for at, iid in ((node, inside_id), (other, outside_id)):
            self.maybe_probes.add(iid)
            try:
                resp = requests.post(at.url("/registry/register"), timeout=10, json={
                    "service_name": "chaos-probe", "instance_id": iid, "host": "127.0.0.1", "port": 1})
            except requests.RequestException as exc:
                self.log(f"note: probe {iid} at {at.name} not written ({type(exc).__name__}); no probe this cut")
                return
            if resp.status_code not in (200, 201):
                self.fail_later(f"probe {iid} at {at.name} during the cut: {resp.status_code} {resp.text[:200]!r}")
                return
            self.probes.add(iid)
        sent = time.monotonic()
        while time.monotonic() - sent < PROBE_WINDOW and cut_active():
            crossed = []
            for o in self.cluster.nodes:
                if not o.running:
                    continue
                iid = outside_id if o is node else inside_id
                if o is other:
                    continue
                try:
                    if requests.get(o.url(f"/registry/instance/{iid}"), timeout=5).status_code == 200:
                        crossed.append(f"{iid} reached {o.name}")
                except requests.RequestException:
                    pass  # restarting
            if crossed and cut_active():
                self.fail_later(f"writes crossed the cut of {node.name} ({time.monotonic() - sent:.2f}s after "
                                f"they were written): {crossed}; rules:\n{self.net.rules()}")
                return
            time.sleep(0.2)
        if cut_active():
            self.report.cut_probes += 1
            self.log(f"nothing crossed the cut of {node.name} in {PROBE_WINDOW:.0f}s "
                     f"({inside_id} at {node.name}, {outside_id} at {other.name})")

    def _watch_rejoin(self, node: ClusterNode, stop: threading.Event) -> None:
        """Measures how long after a mid-run heal every running node sees `node` alive again."""
        assert self.cluster is not None
        started = time.monotonic()
        while time.monotonic() - started < 30 and not stop.is_set():
            try:
                ok = all(statuses_of(o).get(node.name) == ALIVE and
                         (o is not node or all(v == ALIVE for k, v in statuses_of(o).items()
                                               if self.cluster[k].running))
                         for o in self.cluster.nodes if o.running)
            except Exception:  # noqa: BLE001 - a node restarting
                ok = False
            if ok:
                took = time.monotonic() - started
                self.report.rejoin_seconds.append(took)
                self.log(f"{node.name} alive everywhere {took:.2f}s after the heal")
                return
            time.sleep(0.25)

