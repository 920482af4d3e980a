"""Helpers shared by the benchmark harnesses (cluster_bench.py, discovery_bench.py, etcd_bench.py,
health_bench.py) and the modules they are built from.

Run as a script for the disk's fsync latency (used by scripts/bench.sh):

    python3 bench/benchlib.py fsync FILE [SAMPLES]   # prints: samples p50_ms p99_ms mean_ms
"""

from __future__ import annotations

import os
import signal
import statistics
import socket
import subprocess
import sys
import threading
import time


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def verdict(ok):
    return "**met**" if ok else "**MISSED**"


def fmt_ms(seconds):
    """Seconds as milliseconds, as cluster_bench and health_bench report them (discovery_bench and
    etcd_bench have finer ones of their own)."""
    if seconds is None or seconds != seconds:
        return "n/a"
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def fmt_bytes(n):
    if n is None:
        return "n/a"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n:.0f} B"


def free_ports(count):
    """Ports free for TCP and UDP on 127.0.0.1 (DNS listens on both)."""
    held, ports = [], []
    deadline = time.monotonic() + 10
    while len(ports) < count and time.monotonic() < deadline:
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        p = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
        except OSError:
            t.close()
            u.close()
            continue
        held += [t, u]
        ports.append(p)
    for s in held:
        s.close()
    if len(ports) < count:
        raise RuntimeError("could not find free ports")
    return ports


def rss_kib(pid):
    """VmRSS of a process in KiB, or None."""
    return rss_breakdown(pid)[0]


def rss_breakdown(pid):
    """(VmRSS, RssAnon, RssFile) of a process in KiB from /proc/PID/status; None where unknown."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out.get("VmRSS"), out.get("RssAnon"), out.get("RssFile")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def du_bytes(path):
    """Bytes of disk the files under `path` take (allocated blocks, like `du`)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def stop_process(proc, name, timeout):
    """SIGTERM, then SIGKILL after `timeout`. Returns the exit code, or None if it had to be killed."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {proc.pid}) still running {timeout:.0f} s after SIGTERM: SIGKILL")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            return None
    return proc.returncode


def run_threads(target, count, deadline):
    """Runs `target` in `count` daemon threads and waits for them until 5 s past `deadline`
    (a time.monotonic() value). Returns the seconds taken."""
    t0 = time.monotonic()
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic() + 5))
    return time.monotonic() - t0


def die_with_parent():
    """For Popen(preexec_fn=...): the child gets SIGKILL if the harness dies without cleaning up
    (e.g. it is itself SIGKILLed), so no node outlives the benchmark."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def fsync_latency(path, samples=500, budget=15.0):
    """Appends 4 KiB to `path` and fsyncs it, `samples` times (at most `budget` seconds); removes
    the file. Returns (samples taken, p50 ms, p99 ms, mean ms)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = b"\0" * 4096
    lat = []
    deadline = time.monotonic() + budget
    try:
        for _ in range(samples):
            t = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            lat.append((time.perf_counter() - t) * 1000)
            if time.monotonic() > deadline:
                break
    finally:
        os.close(fd)
        os.unlink(path)
    return len(lat), pct(lat, 50), pct(lat, 99), statistics.mean(lat)


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "fsync":
        n, p50, p99, mean = fsync_latency(sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 500)
        print(f"{n} {p50:.3f} {p99:.3f} {mean:.3f}")
    else:
        sys.exit("usage: benchlib.py fsync FILE [SAMPLES]")
