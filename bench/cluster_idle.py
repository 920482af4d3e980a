"""Section 2 of cluster_bench.py, idle gossip traffic: the bytes a node sends per second while
nothing changes, once 3 nodes hold the same instances.
"""

import time

from benchlib import log, verdict
from roster_client import gossip_bytes, register_many


class IdleSection:
    """Mixed into cluster_bench's Bench (roster_cluster.Bench): self.args, self.cluster(),
    self.finish_cluster() and self.problems come from there."""

    def idle(self):
        out = ["### 2. Idle gossip traffic", ""]
        count = self.args.idle_instances
        window = self.args.idle_window
        c = self.cluster("idle", 3)
        try:
            n1 = c.nodes[0]
            secs, errs, first = register_many(n1.http, count, "idle", threads=16, timeout=300)
            log(f"idle: registered {count:,} at n1 in {secs:.1f} s ({count / secs:,.0f}/s), {errs} errors")
            if errs:
                self.problems.append(f"idle: {errs} registration(s) failed: {first}")
            done, last = c.wait_instances(c.nodes, count, timeout=120)
            converged = len(done) == len(c.nodes)
            if not converged:
                self.problems.append(f"idle: not every node reached {count:,} instances within 120 s: {last}")
            log(f"idle: converged {done}; waiting 3 s, then sampling for {window} s")
            time.sleep(3)
            samples = {n.name: [] for n in c.nodes}  # (t, sent wire, sent payload, recv wire)
            t_end = time.monotonic() + window
            next_t = time.monotonic()
            while True:
                now = time.monotonic()
                for n in c.nodes:
                    g = gossip_bytes(n.http)
                    if g is not None:
                        samples[n.name].append((time.monotonic(), g.get(("sent", "wire")), g.get(("sent", "payload")),
                                                g.get(("received", "wire"))))
                if now >= t_end:
                    break
                next_t += 1.0
                time.sleep(max(0.0, next_t - time.monotonic()))
            rows = []
            worst_mean = 0.0
            for n in c.nodes:
                s = [x for x in samples[n.name] if x[1] is not None]
                if len(s) < 2:
                    rows.append((n.name, None, None, None, None))
                    continue
                dur = s[-1][0] - s[0][0]
                mean = (s[-1][1] - s[0][1]) / dur
                mean_payload = (s[-1][2] - s[0][2]) / dur if s[0][2] is not None else None
                mean_recv = (s[-1][3] - s[0][3]) / dur if s[0][3] is not None else None
                per_sec = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(s, s[1:]) if b[0] > a[0]]
                rows.append((n.name, mean, max(per_sec), mean_payload, mean_recv))
                worst_mean = max(worst_mean, mean)
            ok = converged and all(r[1] is not None and r[1] <= 2048 for r in rows)
        finally:
            self.finish_cluster("idle", c)
        out.append(f"3 nodes; {count:,} instances registered at n1 ({count / secs:,.0f} registrations/s from 16 "
                   f"keep-alive connections), every node's `/health` showing {count:,}, then 3 s of rest, then "
                   f"`roster_gossip_bytes_sent{{stage=\"wire\"}}` of every node read once a second for {window} s. "
                   "No health checks, no writes, no reads other than `/metrics` during the window.")
        out.append("")
        out.append("| node | sent, wire: mean | sent, wire: max 1-s interval | sent, payload (before LZ4): mean | received, wire: mean |")
        out.append("|---|---:|---:|---:|---:|")
        for name, mean, mx, mp, mr in rows:
            f = lambda v: "n/a" if v is None else f"{v:,.0f} B/s"
            out.append(f"| {name} | {f(mean)} | {f(mx)} | {f(mp)} | {f(mr)} |")
        out.append("")
        out.append(f"Target: ≤ 2 KB/s per node: {verdict(ok)} (highest node mean {worst_mean:,.0f} B/s). "
                   "These figures are the node's own frames after LZ4 and framing, *before* TLS: each TLS "
                   "record adds about 22 to 29 bytes (header, AEAD tag, and for TLS 1.3 the content type byte), "
                   "plus TCP/IP headers, so the bytes on the network are somewhat higher, most of all for "
                   "small frames such as pings and digests.")
        out.append("")
        return out
