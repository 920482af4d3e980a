"""`/registry/watch`: server-sent events across a real 3-node mTLS cluster (SPEC §2a).

A watcher at one node sees a change made at another as it happens; a watcher that reconnects with
Last-Event-ID gets what it missed; a service filter keeps other services out. Reads run on a
background thread that collects events, and the test waits for conditions with deadlines.
"""

from __future__ import annotations

import json
import threading
import time

import requests

from conftest import wait_until


class Watcher:
    """Reads one SSE stream in the background, collecting parsed events."""

    def __init__(self, node, query: str = "", headers: dict | None = None):
        self.events: list[dict] = []
        self.comments: list[str] = []
        self.resp = requests.get(node.url(f"/registry/watch{query}"), stream=True, timeout=(5, 30), headers=headers or {})
        assert self.resp.status_code == 200, self.resp.text
        assert self.resp.headers["Content-Type"].startswith("text/event-stream")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event: dict = {}
        try:
            for raw in self.resp.iter_lines(decode_unicode=True):
                if raw is None:
                    continue
                if raw == "":
                    if event:
                        self.events.append(event)
                    event = {}
                elif raw.startswith(":"):
                    self.comments.append(raw)
                else:
                    key, _, value = raw.partition(": ")
                    event[key] = json.loads(value) if key == "data" else value
        except (requests.RequestException, AttributeError, ValueError):
            pass

    def ids(self, kind: str | None = None) -> list[str]:
        return [e["data"]["instance_id"] for e in self.events if "data" in e and (kind is None or e.get("event") == kind)]

    def close(self) -> None:
        self.resp.close()


def register(node, service: str, iid: str) -> None:
    resp = node.put("/v1/agent/service/register", {"Name": service, "ID": iid, "Port": 80})
    assert resp.status_code == 200, resp.text


def test_a_watcher_sees_a_change_made_at_another_node_as_it_happens(cluster):
    watcher = Watcher(cluster["n2"], "?service=web")
    try:
        wait_until(lambda: watcher.comments, timeout=5, message="the stream did not open")
        started = time.monotonic()
        register(cluster["n1"], "web", "web-1")
        register(cluster["n1"], "api", "api-1")
        wait_until(lambda: "web-1" in watcher.ids("registered"), timeout=5, message=f"no event for web-1: {watcher.events}")
        assert time.monotonic() - started < 1.0
        assert cluster["n3"].put("/v1/agent/service/deregister/web-1").status_code == 200
        wait_until(lambda: "web-1" in watcher.ids("deregistered"), timeout=5, message=f"no deregistration: {watcher.events}")
        assert "api-1" not in watcher.ids(), "the service filter let another service through"
        ids = [int(e["id"]) for e in watcher.events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), f"event ids must increase: {ids}"
    finally:
        watcher.close()


def test_reconnecting_with_last_event_id_misses_nothing(cluster):
    first = Watcher(cluster["n2"])
    try:
        register(cluster["n1"], "web", "web-1")
        wait_until(lambda: "web-1" in first.ids(), timeout=5, message="no first event")
        last_id = first.events[-1]["id"]
    finally:
        first.close()
    # While nobody watches: two more changes, made at different nodes.
    register(cluster["n3"], "web", "web-2")
    assert cluster["n1"].put("/v1/agent/service/deregister/web-1").status_code == 200
    wait_until(lambda: cluster["n2"].get("/registry/instance/web-2").status_code == 200, timeout=5)
    wait_until(lambda: cluster["n2"].get("/registry/instance/web-1").status_code == 404, timeout=5)
    again = Watcher(cluster["n2"], headers={"Last-Event-ID": last_id})
    try:
        wait_until(lambda: {"web-1", "web-2"} <= set(again.ids()), timeout=5, message=f"missed: {again.events}")
        assert "web-1" in again.ids("deregistered")
    finally:
        again.close()


def test_a_bad_last_event_id_is_refused(cluster):
    resp = cluster["n1"].get("/registry/watch", headers={"Last-Event-ID": "yesterday"})
    assert resp.status_code == 400
    assert resp.json()["error"]["field"] == "Last-Event-ID"
