"""The sse section of discovery_bench.py: 1,000 concurrent /registry/watch streams on one node,
spread over asyncio client processes; the node's memory with them and the fan-out latency of
one event to the last of them.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue
import re
import resource
import time

from benchlib import cpu_seconds, log, pct, rss_kib
from discovery_cluster import CHILDREN, addr_of, consul_register, fmt_kib, fmt_ms, threads_of
from roster_client import Http


ID_RE = re.compile(rb'"instance_id"\s*:\s*"([^"]+)"')


async def _sse_conn(port, path, prefix, state, connected, fail):
    """One SSE watcher: HTTP/1.1 GET, then reads the (possibly chunked) body, line by line."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        fail.append(repr(exc))
        connected.release()
        return
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status_line + b" ":
        fail.append(status_line.decode(errors="replace"))
        connected.release()
        return
    chunked = b"transfer-encoding: chunked" in head.lower()
    buf = b""
    announced = False

    async def body_pieces():
        if not chunked:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                yield data
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]

    try:
        async for piece in body_pieces():
            buf += piece
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not announced and line.startswith(b":"):
                    announced = True
                    connected.release()
                elif line.startswith(b"data:"):
                    m = ID_RE.search(line)
                    if m and m.group(1).startswith(prefix):
                        now = time.monotonic()
                        k = int(m.group(1)[len(prefix):])
                        got = state.get(k)
                        if got is None:
                            state[k] = [now, now, 1]
                        else:
                            got[1] = now
                            got[2] += 1
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError) as exc:
        fail.append(repr(exc))
    finally:
        if not announced:
            connected.release()
        writer.close()


def sse_worker(wid, port, count, prefix, out_q, stop):
    """In its own process: `count` watchers; reports ("connected", ...) and per event (k, first, last, n)."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    except (ValueError, OSError):
        pass

    async def main():
        state, fail = {}, []
        connected = asyncio.Semaphore(0)
        tasks = [asyncio.create_task(_sse_conn(port, "/registry/watch?service=web", prefix.encode(), state, connected, fail))
                 for _ in range(count)]
        for _ in range(count):
            await asyncio.wait_for(connected.acquire(), 60)
        out_q.put(("connected", wid, count - len(fail), fail[:3]))
        reported = set()
        while not stop.is_set():
            await asyncio.sleep(0.002)
            for k, (first, last, n) in list(state.items()):
                if k not in reported and n >= count - len(fail):
                    reported.add(k)
                    out_q.put(("event", wid, k, first, last, n))
        for t in tasks:
            t.cancel()
        out_q.put(("done", wid, {k: v[2] for k, v in state.items()}, fail[:3]))

    asyncio.run(main())


def bench_sse(cluster, args):
    node = cluster[args.sse_node]
    total, workers = args.watchers, args.sse_workers
    prefix = "sse-ev-"
    ctx = mp.get_context("fork")
    out_q, stop = ctx.Queue(), ctx.Event()
    h = Http(node.http)
    # Settle: make sure the node is idle before the first RSS reading.
    rss_before = rss_kib(node.pid)
    threads_before = threads_of(node.pid)
    per = [total // workers + (1 if i < total % workers else 0) for i in range(workers)]
    procs = []
    t_connect = time.monotonic()
    for wid, count in enumerate(per):
        p = ctx.Process(target=sse_worker, args=(wid, node.http_port, count, prefix, out_q, stop), daemon=True)
        p.start()
        CHILDREN.append(p)
        procs.append(p)
    connected, fails = 0, []
    events = {}  # k -> [first, last, n]
    try:
        deadline = time.monotonic() + 90
        got_workers = 0
        while got_workers < workers:
            item = out_q.get(timeout=max(0.1, deadline - time.monotonic()))
            if item[0] == "connected":
                got_workers += 1
                connected += item[2]
                fails += item[3]
        connect_time = time.monotonic() - t_connect
        time.sleep(1.0)  # measurement pause: let the node's memory settle after the connection burst
        rss_connected = rss_kib(node.pid)
        threads_connected = threads_of(node.pid)
        log(f"sse: {connected}/{total} watchers connected in {connect_time:.1f} s; RSS {rss_before} → {rss_connected} KiB")

        # Control: writes to a service nobody watches, with the watchers connected.
        control = []
        cpu_c0 = cpu_seconds(node.pid)
        for k in range(10):
            t_send = time.monotonic()
            consul_register(h, f"sse-ctl-{k}", addr_of(k + 9000), service="api")
            control.append(time.monotonic() - t_send)
            time.sleep(0.02)
        cpu_control = (cpu_seconds(node.pid) - cpu_c0) / 10 if cpu_c0 is not None else None
        acked = {}
        per_worker = {}  # k -> list of (first, last, n) from each worker
        cpu_e0 = cpu_seconds(node.pid)
        for k in range(args.events):
            t_send = time.monotonic()
            consul_register(h, f"{prefix}{k}", addr_of(k + 5000))
            acked[k] = (t_send, time.monotonic())
            deadline = time.monotonic() + 10
            while len(per_worker.get(k, [])) < workers and time.monotonic() < deadline:
                try:
                    item = out_q.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item[0] == "event":
                    per_worker.setdefault(item[2], []).append(item[3:])
            time.sleep(0.1)  # spacing between events, so each is measured alone
        cpu_event = (cpu_seconds(node.pid) - cpu_e0) / args.events if cpu_e0 is not None else None
        rss_after = rss_kib(node.pid)
    finally:
        stop.set()
        h.close()
        delivered = {}
        deadline = time.monotonic() + 10
        done = 0
        while done < len(procs) and time.monotonic() < deadline:
            try:
                item = out_q.get(timeout=0.5)
            except queue.Empty:
                continue
            if item[0] == "done":
                done += 1
                for k, n in item[2].items():
                    delivered[k] = delivered.get(k, 0) + n
                fails += item[3]
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()  # by its PID
                p.join(5)

    last_lat, first_lat, last_from_send, complete = [], [], [], 0
    write_rtt = [a[1] - a[0] for a in acked.values()]
    for k in range(args.events):
        reps = per_worker.get(k, [])
        if len(reps) == workers and sum(r[2] for r in reps) >= connected:
            complete += 1
            last_lat.append(max(r[1] for r in reps) - acked[k][1])
            first_lat.append(min(r[0] for r in reps) - acked[k][1])
            last_from_send.append(max(r[1] for r in reps) - acked[k][0])
    lines = [f"### {total:,} concurrent SSE watchers on one node ({node.name})", ""]
    lines.append(f"{total:,} raw HTTP/1.1 connections to `/registry/watch?service=web`, spread over {workers} "
                 f"asyncio client processes on the same machine; each event is the registration of a new `web` "
                 f"instance at {node.name} itself, {args.events} events one at a time.")
    lines.append("")
    lines.append("| measure | value |")
    lines.append("|---|---|")
    lines.append(f"| watchers connected (stream opened) | {connected:,}/{total:,} in {connect_time:.1f} s |")
    lines.append(f"| node RSS before they connect | {fmt_kib(rss_before)} ({threads_before} threads) |")
    lines.append(f"| node RSS with them connected | {fmt_kib(rss_connected)} ({threads_connected} threads); "
                 f"+{fmt_kib(rss_connected - rss_before)}, ≈ {(rss_connected - rss_before) / max(connected, 1):.1f} KiB per watcher |")
    lines.append(f"| node RSS after {args.events} events | {fmt_kib(rss_after)} |")
    lines.append(f"| events delivered to every watcher | {complete}/{args.events} |")
    if last_lat:
        lines.append(f"| **fan-out: write's 200 → LAST watcher has it** | p50 **{fmt_ms(pct(last_lat, 50))}**, "
                     f"p99 **{fmt_ms(pct(last_lat, 99))}**, max {fmt_ms(max(last_lat))} |")
        lines.append(f"| write sent → LAST watcher has it | p50 {fmt_ms(pct(last_from_send, 50))}, "
                     f"p99 {fmt_ms(pct(last_from_send, 99))}, max {fmt_ms(max(last_from_send))} |")
        lines.append(f"| write's 200 → FIRST watcher has it (negative: before the writer read its 200) | "
                     f"p50 {fmt_ms(pct(first_lat, 50))}, p99 {fmt_ms(pct(first_lat, 99))} |")
    lines.append(f"| write round trip (PUT → 200) of those `web` writes | p50 {fmt_ms(pct(write_rtt, 50))}, p99 {fmt_ms(pct(write_rtt, 99))} |")
    lines.append(f"| control: write round trip to unwatched `api`, watchers connected | p50 {fmt_ms(pct(control, 50))}, "
                 f"p99 {fmt_ms(pct(control, 99))} |")
    if cpu_event is not None and cpu_control is not None:
        lines.append(f"| node CPU per write: `web` (fanned out to {connected:,}) / unwatched `api` | "
                     f"{fmt_ms(cpu_event)} / {fmt_ms(cpu_control)} (incl. idle gossip in the same window) |")
    if fails:
        lines.append(f"| client-side failures | {len(fails)}: {fails[:3]} |")
    lines.append("")
    if write_rtt and control and cpu_event is not None:
        lines.append(f"A write to the watched service is answered in p50 {fmt_ms(pct(write_rtt, 50))} against "
                     f"{fmt_ms(pct(control, 50))} for an unwatched one, and the node spends ≈ "
                     f"{max(cpu_event - (cpu_control or 0), 0) / max(connected, 1) * 1e6:.0f} µs of CPU per watcher per "
                     "event: the writer's 200 queues behind the fan-out, so \"write sent → last watcher\" is the "
                     "end-to-end figure, and \"write's 200 → last\" flatters it.")
        lines.append("")
    lines.append("The client is Python, so the spread between the first and the last watcher includes the time "
                 f"{workers} Python processes need to read {total:,} sockets on 2 cores shared with the cluster; "
                 "the node's own fan-out is at most the figure above.")
    lines.append("")
    return lines
