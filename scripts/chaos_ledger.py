"""The writers of a chaos run and their ledger: every operation, sent and answered, from which
the end of the run knows what each node must hold (see chaos.py for the rules)."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from chaos_common import ClusterNode

WRITERS = 4
MIN_GAP = 0.005  # seconds between the answer to one operation on an instance and the next one
MAX_KEYS_PER_WRITER = 400  # then writers only update, deregister and re-register
REQUEST_TIMEOUT = (1.0, 10.0)  # connect, read
SERVICES = [f"svc-{c}" for c in "abcdef"]


@dataclass
class Op:
    seq: int
    writer: int
    instance: str
    service: str
    kind: str  # register | deregister
    node: str
    api: str  # native | consul
    port: int | None
    sent: float = 0.0
    done: float = 0.0
    outcome: str = "pending"  # then acked | rejected | refused | unknown
    detail: str = ""

    @property
    def tag(self) -> str:
        return str(self.seq)

    def describe(self, t0: float) -> str:
        what = f"register port={self.port} op={self.seq}" if self.kind == "register" else f"deregister (op {self.seq})"
        done = "still in flight" if self.outcome == "pending" else f"{self.outcome} at {self.done - t0:.2f}s"
        return (f"{what} via {self.api} at {self.node}, sent at {self.sent - t0:.2f}s, "
                f"{done}{(' (' + self.detail + ')') if self.detail else ''}")


@dataclass
class InstanceHistory:
    instance: str
    service: str
    ops: list[Op] = field(default_factory=list)
    retired: bool = False

    def acked_state(self) -> Op | None:
        """The last acknowledged operation: what every node must show (None: nothing acked)."""
        last = None
        for op in self.ops:
            if op.outcome == "acked":
                last = op
        return last

    def acceptable(self) -> list[Op | None]:
        """The states a node may show: the last acknowledged one, and, when the last operation's
        outcome is unknown, its effect too. None stands for "never registered"."""
        states: list[Op | None] = [self.acked_state()]
        if self.ops and self.ops[-1].outcome == "unknown":
            states.append(self.ops[-1])
        return states


def matches(state: Op | None, observed: dict | None) -> bool:
    if state is None or state.kind == "deregister":
        return observed is None
    return (
        observed is not None
        and observed.get("service_name") == state.service
        and observed.get("port") == state.port
        and (observed.get("metadata") or {}).get("op") == state.tag
    )


def show(observed: dict | None) -> str:
    if observed is None:
        return "absent"
    meta = observed.get("metadata") or {}
    return f"present with port={observed.get('port')} op={meta.get('op')} service={observed.get('service_name')}"


def expected_text(state: Op | None) -> str:
    if state is None:
        return "absent (no registration was ever acknowledged)"
    if state.kind == "deregister":
        return f"absent (deregistration op {state.seq} acknowledged by {state.node})"
    return f"present with port={state.port} op={state.seq} (acknowledged by {state.node})"


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.instances: dict[str, InstanceHistory] = {}
        self.seq = 0

    def next_seq(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq

    def add(self, op: Op) -> None:
        """Records `op` before it is sent: a server may apply it before its answer comes back,
        and a check meanwhile must know that it exists (as `pending`)."""
        with self.lock:
            self.instances.setdefault(op.instance, InstanceHistory(op.instance, op.service)).ops.append(op)

    def finish(self, op: Op, outcome: str, detail: str = "") -> None:
        with self.lock:
            op.detail = detail
            op.done = time.monotonic()
            op.outcome = outcome
            if outcome == "unknown":
                self.instances[op.instance].retired = True

    def all_ops(self) -> list[Op]:
        with self.lock:
            return [op for h in self.instances.values() for op in h.ops]


def classify_error(exc: requests.RequestException) -> str:
    """`refused` when the request certainly never reached a server, else `unknown`."""
    if isinstance(exc, requests.ConnectTimeout):
        return "refused"
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        if isinstance(inner, (NewConnectionError, ConnectTimeoutError)):
            return "refused"
    return "unknown"


class Writer(threading.Thread):
    def __init__(self, index: int, rng: random.Random, nodes: list[ClusterNode], ledger: Ledger,
                 stop: threading.Event):
        super().__init__(name=f"writer-{index}", daemon=True)
        self.index = index
        self.rng = rng
        self.nodes = nodes
        self.ledger = ledger
        self.stop_event = stop
        self.live: dict[str, str] = {}  # instance -> service, as the writer last had it acknowledged
        self.dead: dict[str, str] = {}
        self.last_done: dict[str, float] = {}
        self.keys = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.step()
                time.sleep(self.rng.uniform(0.0, 0.02))  # pacing of the workload
        except BaseException as exc:  # noqa: BLE001 - reported by the run
            self.error = exc

    def step(self) -> None:
        """About 30 % new instances (until MAX_KEYS_PER_WRITER), 30-50 % updates, and the rest
        deregistrations or re-registrations, whichever keeps about 60 % of the keys live."""
        r = self.rng.random()
        can_create = self.keys < MAX_KEYS_PER_WRITER
        if can_create and (len(self.live) < 5 or r < 0.3):
            self.keys += 1
            iid = f"w{self.index}-{self.keys:04d}"
            self.do("register", iid, self.rng.choice(SERVICES))
        elif r < 0.6 and self.live:
            iid = self.rng.choice(sorted(self.live))
            self.do("register", iid, self.live[iid])
        elif self.dead and len(self.live) < 0.6 * (len(self.live) + len(self.dead)):
            iid = self.rng.choice(sorted(self.dead))
            self.do("register", iid, self.dead[iid])
        elif self.live:
            iid = self.rng.choice(sorted(self.live))
            self.do("deregister", iid, self.live[iid])

    def do(self, kind: str, iid: str, service: str) -> None:
        node = self.rng.choice(self.nodes)
        api = "consul" if self.rng.random() < 0.3 else "native"
        port = self.rng.randint(1024, 65535) if kind == "register" else None
        op = Op(self.ledger.next_seq(), self.index, iid, service, kind, node.name, api, port)
        wait = self.last_done.get(iid, 0.0) + MIN_GAP - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the stamp-order margin explained in the module docstring
        meta = {"op": op.tag, "writer": str(self.index)}
        if kind == "register" and api == "native":
            method, path, codes = "POST", "/registry/register", (200, 201)
            body = {"service_name": service, "instance_id": iid, "host": "127.0.0.1", "port": port, "metadata": meta}
        elif kind == "register":
            method, path, codes = "PUT", "/v1/agent/service/register", (200,)
            body = {"Name": service, "ID": iid, "Address": "127.0.0.1", "Port": port, "Meta": meta}
        elif api == "native":
            method, path, codes = "POST", "/registry/deregister", (200,)
            body = {"service_name": service, "instance_id": iid}
        else:
            method, path, codes = "PUT", f"/v1/agent/service/deregister/{iid}", (200,)
            body = None
        op.sent = time.monotonic()
        self.ledger.add(op)
        outcome, detail = "unknown", ""
        try:
            resp = requests.request(
                method, node.url(path), data=json.dumps(body) if body is not None else None,
                headers={"Content-Type": "application/json", "Connection": "close"}, timeout=REQUEST_TIMEOUT,
            )
            if resp.status_code in codes:
                outcome = "acked"
            elif 400 <= resp.status_code < 500:
                outcome, detail = "rejected", f"{resp.status_code} {resp.text[:120]}"  # not applied
            else:
                outcome, detail = "unknown", f"{resp.status_code} {resp.text[:120]}"
        except requests.RequestException as exc:
            outcome, detail = classify_error(exc), type(exc).__name__
        self.ledger.finish(op, outcome, detail)
        self.last_done[iid] = op.done
        if op.outcome == "unknown":  # never touched again: its final state is one of two
            self.live.pop(iid, None)
            self.dead.pop(iid, None)
        elif op.outcome == "acked":
            if kind == "register":
                self.live[iid] = service
                self.dead.pop(iid, None)
            else:
                self.dead[iid] = service
                self.live.pop(iid, None)
