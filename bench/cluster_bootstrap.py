"""Section 3 of cluster_bench.py, bootstrap of a fresh node: how long a new, empty n4 takes to
hold every instance of a loaded 3-node cluster, what it received and what it costs in memory.
"""

import json
import time

from benchlib import du_bytes, fmt_bytes, fmt_ms, log, rss_kib, verdict
from roster_client import Http, gossip_bytes, register_many


class BootstrapSection:
    """Mixed into cluster_bench's Bench (roster_cluster.Bench): self.args, self.cluster(),
    self.finish_cluster() and self.problems come from there."""

    def bootstrap(self):
        out = ["### 3. Bootstrap of a fresh node", ""]
        count = self.args.bootstrap_instances
        kinds = self.args.bootstrap_kinds
        results = []
        for kind in kinds:
            results.append((kind, self._bootstrap_run(kind, count)))
        desc = {
            "minimal": "`{\"Name\", \"ID\", \"Port\"}` only (service `boot-svc-0..99`, ID `boot-N`)",
            "typical": "what a real client sends: `Name`, `ID`, a distinct `Address` (10.x.y.z), `Port`, "
                       "3 `Tags` and 3 `Meta` keys",
        }
        out.append(f"3 nodes; {count:,} instances registered at n1 from {self.args.reg_threads} concurrent "
                   "keep-alive connections (each answer fsync'd at n1 before it is sent); then a **fresh n4** "
                   "(empty data dir, `--join` n1, n2, n3) is started, and the time is measured from its process "
                   "start (`Popen`) until its `/health` shows every instance, polled every ~5 ms. Registration "
                   "bodies, one fresh cluster each:")
        out.append("")
        for kind, _ in results:
            out.append(f"- **{kind}**: {desc.get(kind, kind)}.")
        out.append("")
        head = "| measure | " + " | ".join(k for k, _ in results) + " | target |"
        out.append(head)
        out.append("|---|" + "---:|" * len(results) + "---|")

        def row(label, f, target=""):
            out.append(f"| {label} | " + " | ".join(f(r) for _, r in results) + f" | {target} |")

        row("registration rate at n1", lambda r: f"{count / r['reg_secs']:,.0f}/s ({r['reg_secs']:.1f} s)"
            + (f", {r['reg_errs']} failed" if r["reg_errs"] else ""))
        row("n2, n3 hold all after the last answer", lambda r: ", ".join(
            f"{v:.2f} s" for _k, v in sorted(r.get("catchup", {}).items()) if _k != "n1") or "not reached")
        row("n4 answers `/health`", lambda r: "never" if r.get("first_answer") is None else f"{r['first_answer']:.2f} s")
        row("n4 slowest `/health` answer while bootstrapping", lambda r: fmt_ms(r.get("slowest_health")))
        row(f"**n4 holds {count:,} instances**",
            lambda r: "**not reached**" if r.get("reached") is None else f"**{r['reached']:.2f} s**",
            "≤ 3 s: " + verdict(all(r.get("reached") is not None and r["reached"] <= 3.0 for _, r in results)))
        row("n4 gossip bytes received, payload (without LZ4)", lambda r: fmt_bytes(r["recv_payload"]))
        row("n4 gossip bytes received, wire (LZ4 + framing, before TLS)", lambda r: fmt_bytes(r["recv_wire"]))
        row("**ratio payload / wire**", lambda r: "n/a" if r["ratio"] is None else f"**{r['ratio']:.2f}×**",
            "≥ 3×: " + ", ".join(f"{k} {verdict(r['ratio'] is not None and r['ratio'] >= 3.0)}" for k, r in results))
        row("payload per instance", lambda r: "n/a" if not r["recv_payload"] else f"{r['recv_payload'] / count:.0f} B")
        row("payload sent by n1, n2, n3 while n4 bootstrapped", lambda r: ", ".join(
            fmt_bytes(v) for _k, v in sorted((r.get("peer_sent") or {}).items())) or "n/a")
        names = sorted({n for _, r in results for n in r.get("rss", {})})
        for name in names:
            row(f"RSS of {name} (VmRSS)", lambda r, name=name: fmt_bytes(r["rss"][name] * 1024) if r.get("rss", {}).get(name) else "n/a")
        row("data dir size per node", lambda r: fmt_bytes(max(r.get("data_du", {}).values() or [0])))
        row("instances at n1..n4 at the end", lambda r: ", ".join(
            "?" if v is None else f"{v:,}" for _k, v in sorted(r.get("health", {}).items())))
        out.append("")
        out.append("One copy of the state is roughly the data dir size; when n4 receives much more payload than "
                   "that, the same records reached it from more than one peer (see the payload sent by n1..n3 "
                   "in the same window, which is almost all traffic to n4). RSS is read from `/proc/PID/status` "
                   "once n4 holds every instance. n4's instance count after its start:")
        out.append("")
        for kind, r in results:
            tl = r.get("timeline") or []
            if tl:
                out.append(f"- {kind}: " + ", ".join(f"{t:.2f} s: {n:,}" for t, n in thin_timeline(tl, 12)) + ".")
        out.append("")
        return out

    def _bootstrap_run(self, kind, count):
        c = self.cluster(f"bootstrap-{kind}", 3)
        res = {"reg_secs": float("nan"), "reg_errs": 0, "recv_payload": None, "recv_wire": None, "ratio": None}
        try:
            n1, n2, n3 = c.nodes
            log(f"bootstrap-{kind}: registering {count:,} instances at n1")
            secs, errs, first = register_many(n1.http, count, "boot", threads=self.args.reg_threads, timeout=300,
                                              kind=kind)
            res["reg_secs"], res["reg_errs"] = secs, errs
            log(f"bootstrap-{kind}: {count:,} in {secs:.1f} s ({count / secs:,.0f}/s), {errs} errors")
            if errs:
                self.problems.append(f"bootstrap-{kind}: {errs} registration(s) failed: {first}")
            done, last = c.wait_instances([n1, n2, n3], count, timeout=120)
            res["catchup"] = done
            if len(done) < 3:
                self.problems.append(f"bootstrap-{kind}: n1..n3 did not all reach {count:,} within 120 s after the "
                                     f"registrations: last /health counts {last}")
                log(f"bootstrap-{kind}: n1..n3 did not converge: {last}")
            log(f"bootstrap-{kind}: n1..n3 hold {last}; starting fresh n4")
            before = {n.name: (gossip_bytes(n.http) or {}).get(("sent", "payload")) for n in (n1, n2, n3)}
            n4 = c.add_node()
            t_start = n4.start([n.bind for n in (n1, n2, n3)])
            first_answer = None
            timeline = []  # (seconds since start, instances)
            reached = None
            deadline = t_start + self.args.bootstrap_timeout
            h = Http(n4.http, timeout=5)
            last_tl = -1.0
            slowest_health = 0.0
            while time.monotonic() < deadline:
                try:
                    asked = time.monotonic()
                    status, data = h.request("GET", "/health")
                    now = time.monotonic()
                    if first_answer is not None:
                        slowest_health = max(slowest_health, now - asked)
                    inst = json.loads(data).get("instances") if status == 200 else None
                except Exception:
                    h.close()
                    now, inst = time.monotonic(), None
                if inst is not None:
                    if first_answer is None:
                        first_answer = now - t_start
                    if now - t_start - last_tl >= 0.2:
                        timeline.append((now - t_start, inst))
                        last_tl = now - t_start
                    if inst == count:
                        reached = now - t_start
                        timeline.append((reached, inst))
                        break
                if not n4.alive():
                    self.problems.append(f"bootstrap-{kind}: n4 exited with code {n4.proc.returncode} while bootstrapping")
                    break
                time.sleep(0.005)
            h.close()
            res["first_answer"], res["reached"], res["timeline"] = first_answer, reached, timeline
            res["slowest_health"] = slowest_health
            if reached is None:
                self.problems.append(f"bootstrap-{kind}: n4 did not reach {count:,} instances within "
                                     f"{self.args.bootstrap_timeout:.0f} s of its start; count over time: "
                                     + ", ".join(f"{t:.1f}s:{n}" for t, n in thin_timeline(timeline, 15)))
            log(f"bootstrap-{kind}: n4 reached {count:,} after {reached} s")
            res["rss"] = {n.name: rss_kib(n.proc.pid) for n in c.nodes}
            time.sleep(1.5)  # the byte counters are sampled into the metrics periodically
            g4 = gossip_bytes(n4.http) or {}
            after = {n.name: (gossip_bytes(n.http) or {}).get(("sent", "payload")) for n in (n1, n2, n3)}
            res["peer_sent"] = {k: (after[k] - before[k]) if after.get(k) is not None and before.get(k) is not None
                                else None for k in before}
            res["recv_payload"], res["recv_wire"] = g4.get(("received", "payload")), g4.get(("received", "wire"))
            if res["recv_payload"] and res["recv_wire"]:
                res["ratio"] = res["recv_payload"] / res["recv_wire"]
            res["health"] = {n.name: (n.health() or {}).get("instances") for n in c.nodes}
            res["data_du"] = {n.name: du_bytes(n.data_dir) for n in c.nodes}
            bad = {k: v for k, v in res["health"].items() if v != count}
            if bad:
                self.problems.append(f"bootstrap-{kind}: at the end, nodes not holding {count:,}: {bad}")
        finally:
            self.finish_cluster("bootstrap", c)
        return res


def thin_timeline(tl, k):
    if len(tl) <= k:
        return tl
    step = (len(tl) - 1) / (k - 1)
    idx = sorted({int(round(i * step)) for i in range(k)})
    return [tl[i] for i in idx]
