"""Section 4 of cluster_bench.py, failure detection: how long after `kill -9` of one of 3 nodes
both others show it as failed, over several rounds with a restart in between.
"""

import json
import threading
import time

from benchlib import log, verdict
from roster_client import Http


class FailureSection:
    """Mixed into cluster_bench's Bench (roster_cluster.Bench): self.args, self.cluster(),
    self.finish_cluster() and self.problems come from there."""

    def failure(self):
        out = ["### 4. Failure detection", ""]
        rounds = self.args.failure_rounds
        c = self.cluster("failure", 3)
        times, notes = [], []
        rejoin = []
        try:
            n1, n2, n3 = c.nodes
            for r in range(rounds):
                # Poll n1 and n2 concurrently; each records when it first shows n3 as 4.
                seen = {}
                stop = threading.Event()
                t_kill = [None]
                first_other = {}

                def watch(node):
                    h = Http(node.http, timeout=2)
                    try:
                        while not stop.is_set():
                            try:
                                status, data = h.request("GET", "/v1/agent/members")
                                now = time.monotonic()
                                m = {x.get("Name"): x.get("Status") for x in json.loads(data)} if status == 200 else {}
                            except Exception:
                                now, m = time.monotonic(), {}
                            if t_kill[0] is not None:
                                st = m.get("n3")
                                if st not in (1, None) and node.name not in first_other:
                                    first_other[node.name] = (st, now - t_kill[0])
                                if st == 4:
                                    seen[node.name] = now - t_kill[0]
                                    return
                            time.sleep(0.01)
                    finally:
                        h.close()

                ws = [threading.Thread(target=watch, args=(n,), daemon=True) for n in (n1, n2)]
                for w in ws:
                    w.start()
                time.sleep(0.3)
                t_kill[0] = time.monotonic()
                n3.kill9()
                deadline = time.monotonic() + self.args.failure_timeout
                for w in ws:
                    w.join(max(0.0, deadline - time.monotonic()))
                stop.set()
                for w in ws:
                    w.join(3)
                if len(seen) == 2:
                    t = max(seen.values())
                    times.append(t)
                    log(f"failure round {r + 1}: n1 {seen['n1']:.2f} s, n2 {seen['n2']:.2f} s")
                    notes.append((r + 1, seen.get("n1"), seen.get("n2"), t, first_other))
                else:
                    log(f"failure round {r + 1}: not failed everywhere within {self.args.failure_timeout} s: {seen}")
                    notes.append((r + 1, seen.get("n1"), seen.get("n2"), None, first_other))
                    self.problems.append(f"failure: round {r + 1}: n3 not Status 4 at both n1 and n2 within "
                                         f"{self.args.failure_timeout:.0f} s of kill -9 (seen: {seen}, members now: "
                                         f"n1 {n1.members()}, n2 {n2.members()})")
                if r + 1 < rounds:
                    t0 = time.monotonic()
                    n3.start(c.joins_for(n3))
                    try:
                        c.wait_healthy([n3], 30)
                        c.wait_all_alive(c.nodes, 30)
                        rejoin.append(time.monotonic() - t0)
                    except RuntimeError as e:
                        self.problems.append(f"failure: restarted n3 did not rejoin: {e}")
                        rejoin.append(None)
                        break
                    time.sleep(1.0)
        finally:
            self.finish_cluster("failure", c)
        out.append(f"3 nodes; `kill -9` of n3, then `GET /v1/agent/members` polled at n1 and n2 concurrently "
                   "(every ~10 ms) until both show n3 with Status 4 (failed). n3 is then restarted on the same "
                   "data dir and ports, and the next round starts once all three see each other alive.")
        out.append("")
        out.append("| round | n1 sees failed | n2 sees failed | both | first non-alive state seen (n1 / n2) |")
        out.append("|---:|---:|---:|---:|---|")
        status_name = {1: "alive", 2: "leaving", 3: "left", 4: "failed"}
        for rnd, a, b, t, fo in notes:
            f = lambda v: "—" if v is None else f"{v:.2f} s"
            desc = " / ".join(
                (f"{status_name.get(fo[k][0], fo[k][0])} at {fo[k][1]:.2f} s" if k in fo else "—") for k in ("n1", "n2"))
            out.append(f"| {rnd} | {f(a)} | {f(b)} | {f(t)} | {desc} |")
        out.append("")
        ok = len(times) == rounds and max(times) <= 5.0
        mx = f"{max(times):.2f} s" if times else "n/a"
        out.append(f"Max {mx} over {len(times)} of {rounds} rounds; target ≤ 5 s: {verdict(ok)}."
                   + (f" Restarted n3 seen alive by all three after: "
                      + ", ".join("n/a" if x is None else f"{x:.1f} s" for x in rejoin) + "." if rejoin else ""))
        out.append("")
        return out
