"""What a benchmark report says about where it ran: the machine (CPU, memory, file system of the
work dir), the core count, and the git commit of the repository and of the binary under test.
Shared by cluster_bench.py and etcd_bench.py.
"""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine_info(work):
    """(CPU model, total memory, file system type of `work`) for a report's header."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "unknown"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 1048576:.0f} GiB"
    except OSError:
        pass
    fs = subprocess.run(["stat", "-f", "-c", "%T", work], capture_output=True, text=True).stdout.strip() or "?"
    return cpu, mem, fs


def git(*a, where=REPO):
    """The output of `git -C where ARGS...`, stripped; "" if git fails."""
    try:
        return subprocess.run(["git", "-C", where, *a], capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def binary_origin(path):
    """(worktree, short commit, dirty) of the git checkout the binary sits in, if any."""
    d = os.path.dirname(os.path.realpath(path))
    top = git("rev-parse", "--show-toplevel", where=d)
    if not top:
        return None
    return top, git("rev-parse", "--short", "HEAD", where=d), bool(git("status", "--porcelain", "--untracked-files=no", where=d))


def nproc():
    """What `nproc` prints (the cores this process may use), or os.cpu_count()."""
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:
        return str(os.cpu_count())
