"""The Markdown report of cluster_bench.py: a header on the run and the machine, the sections'
own Markdown, a summary of the node logs, the problems seen, and how to reproduce the run.
"""

import os
import time

from host_info import binary_origin, git, machine_info, nproc


def markdown(bench, args, sections, body, total):
    """The whole report around `body` (the sections' lines), as one string."""
    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    cpu, mem, fs = machine_info(bench.work)
    origin = binary_origin(args.bin)
    if origin:
        btop, brev, bdirty = origin
        bin_note = (f"The binary `{args.bin}` was built from commit `{brev}`{' with uncommitted changes' if bdirty else ''}"
                    f" (checkout `{btop}`)" + ("." if brev == rev else f"; **the repository's HEAD is `{rev}`**."))
    else:
        bin_note = f"The binary `{args.bin}` is outside a git checkout; its commit is unknown."
    md = ["## Cluster benchmarks", ""]
    md.append(f"Written by `scripts/bench-cluster.sh` (`bench/cluster_bench.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"repository HEAD `{rev}`; sections: {', '.join(sections)}; "
              f"whole run {total:.0f} s.")
    md.append(f"Release build, every node a separate `roster agent` process on loopback with mutual TLS between "
              f"peers, `--log-level {args.log_level}`, data dirs on the real disk ({fs}). The nodes and the "
              f"Python load generator share **{os.cpu_count()} cores** (`nproc` = {nproc()}; {cpu}, {mem}), "
              "so these figures are pessimistic compared with one node per machine. " + bin_note)
    md.append("")
    md += body
    # log summary
    md.append("### Node logs")
    md.append("")
    md.append("Lines containing `error` or `warn` (case-insensitive) in every node's log, at "
              f"`--log-level {args.log_level}`, per section:")
    md.append("")
    any_lines = False
    for s in sections:
        for label, summary in bench.logs.get(s, []):
            parts = [f"{n} {cnt}" for n, (cnt, _l) in sorted(summary.items())]
            md.append(f"- {label}: " + ", ".join(parts) + ".")
            merged = {}
            for n, (cnt, lines) in summary.items():
                for k, v in lines.items():
                    merged.setdefault(k, [0, set()])
                    merged[k][0] += v
                    merged[k][1].add(n)
            for k, (v, ns) in sorted(merged.items(), key=lambda x: -x[1][0])[:6]:
                any_lines = True
                shown = k.replace("`", "'")
                md.append(f"  - {v}× ({', '.join(sorted(ns))}): `{shown}`")
    if not any_lines:
        md.append("")
        md.append("None.")
    md.append("")
    if bench.problems:
        md.append("### Problems seen")
        md.append("")
        for p in bench.problems:
            md.append(f"- {p}")
        md.append("")
    md.append("### Reproduce")
    md.append("")
    md.append("```sh")
    md.append("swift build -c release --product roster")
    only = "".join(f" --only {s}" for s in sections) if args.only else ""
    md.append(f"scripts/bench-cluster.sh{only}            # or: python3 bench/cluster_bench.py --bin .build/release/roster{only}")
    md.append("```")
    md.append("")
    md.append("Each node is started as (n1 of a 3-node cluster; certificates from `roster tls ca create --dir D` "
              "and `roster tls cert create --dir D --node nX`):")
    md.append("")
    md.append("```sh")
    md.append("roster agent --node-name n1 --data-dir DATA/n1 --http 127.0.0.1:H1 --dns 127.0.0.1:S1 \\\n"
              "  --bind 127.0.0.1:P1 --advertise 127.0.0.1:P1 --join 127.0.0.1:P2 --join 127.0.0.1:P3 \\\n"
              f"  --tls-ca D/ca.pem --tls-cert D/n1.pem --tls-key D/n1-key.pem --log-level {args.log_level}")
    md.append("```")
    md.append("")
    return "\n".join(md)
