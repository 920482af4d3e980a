"""One real `roster agent` process on loopback, and the helpers that drive it.

Every node is started from the built binary (env ROSTER_BIN, default `.build/debug/roster`), on
free loopback ports, with its log in the test's tmp_path. Nothing here sleeps to synchronise:
`wait_until` polls a condition against a deadline and fails with what it last saw.

The fixtures that make these nodes for a test live in conftest.py, which re-exports every name here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = float(os.environ.get("ROSTER_START_TIMEOUT", "30"))
STOP_TIMEOUT = 5.0  # SPEC §1: a graceful leave exits 0 within 5 s.
LOG_TAIL_LINES = 60


# MARK: - helpers


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    message: str = "condition",
    interval: float = 0.05,
) -> Any:
    """Polls `predicate` until it returns something truthy; returns that value.

    Exceptions raised by the predicate count as "not yet" and the last one is reported on timeout,
    so a predicate may freely do HTTP requests against a node that is still starting.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - reported below
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {message}; last: {last!r}")
        time.sleep(interval)


def free_ports(count: int) -> list[int]:
    """Returns `count` distinct loopback ports that are free for both TCP and UDP right now."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                tcp.close()
                udp.close()
                continue
            held += [tcp, udp]
            ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


def roster_binary() -> Path:
    path = Path(os.environ.get("ROSTER_BIN", ".build/debug/roster"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def error_of(resp: requests.Response) -> dict:
    """The `{"error": {"field", "message"}}` body of a 4xx answer, asserted to be well formed."""
    assert 400 <= resp.status_code < 500, f"expected a 4xx, got {resp.status_code}: {resp.text[:300]!r}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"4xx body is not JSON: {resp.status_code} {resp.text[:300]!r}") from None
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"no error object: {body!r}"
    err = body["error"]
    assert isinstance(err.get("field"), str) and err["field"], f"error.field missing or empty: {body!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"error.message missing or empty: {body!r}"
    return err


# MARK: - Node


class Node:
    """One `roster agent` process with its own ports, data dir and log file."""

    def __init__(self, tmp_path: Path, name: str = "n1", extra_args: list[str] | None = None):
        self.name = name
        self.binary = roster_binary()
        self.http_port, self.dns_port, self.bind_port = free_ports(3)
        self.data_dir = tmp_path / f"data-{name}"
        self.log_path = tmp_path / f"{name}.log"
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.session = requests.Session()

    # -- addresses

    @property
    def http_addr(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.http_addr}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def args(self) -> list[str]:
        return [
            str(self.binary),
            "agent",
            "--node-name", self.name,
            "--data-dir", str(self.data_dir),
            "--http", self.http_addr,
            "--dns", f"127.0.0.1:{self.dns_port}",
            "--bind", f"127.0.0.1:{self.bind_port}",
            "--insecure-plaintext",
            "--log-level", "debug",
            *self.extra_args,
        ]

    # -- lifecycle

    def start(self, timeout: float = START_TIMEOUT) -> "Node":
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> "Node":
        """Starts the process without waiting for it (see `wait_ready`), so that several nodes boot at once."""
        assert self.proc is None or self.proc.poll() is not None, "node already running"
        if not self.binary.exists():
            pytest.fail(f"roster binary not found at {self.binary}; run `swift build` or set ROSTER_BIN")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.args())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.args(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=REPO_ROOT,
                start_new_session=True,  # a Ctrl-C on the test run must not reach it first
            )
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            code = self.proc.poll() if self.proc else None
            if code is not None:
                pytest.fail(f"node {self.name} exited with {code} before /health answered\n{self.log_tail()}")
            try:
                resp = requests.get(self.url("/health"), timeout=1)
                if resp.status_code == 200:
                    resp.json()  # contract: JSON once ready
                    return
                last = f"{resp.status_code} {resp.text[:200]!r}"
            except (requests.RequestException, ValueError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                pytest.fail(f"node {self.name} not ready after {timeout}s (last: {last!r})\n{self.log_tail()}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_and_wait(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> tuple[int, float]:
        """Sends `sig` and waits; returns (exit code, seconds taken). Kills it if it overstays."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(
                f"node {self.name} did not exit within {timeout}s of signal {sig}\n{self.log_tail()}"
            )
        return code, time.monotonic() - started

    def stop(self, sig: int = signal.SIGTERM) -> float:
        """Graceful stop: asserts exit code 0 within 5 s. Returns the seconds it took."""
        code, took = self.signal_and_wait(sig)
        assert code == 0, f"node {self.name} exited with {code} after signal {sig}\n{self.log_tail()}"
        return took

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL, by the PID we started
        self.proc.wait(timeout=10)

    def restart(self) -> "Node":
        if self.running:
            self.stop()
        self.session.close()
        self.session = requests.Session()
        return self.start()

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.session.close()

    def log_tail(self) -> str:
        return f"--- last lines of {self.log_path} ---\n{tail(self.log_path)}"

    # -- HTTP

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 10)
        return self.session.get(self.url(path), **kw)

    def post(self, path: str, body: Any = None, **kw) -> requests.Response:
        kw.setdefault("timeout", 10)
        if body is not None and "data" not in kw:
            kw["data"] = json.dumps(body)
            kw.setdefault("headers", {"Content-Type": "application/json"})
        return self.session.post(self.url(path), **kw)

    def put(self, path: str, body: Any = None, **kw) -> requests.Response:
        kw.setdefault("timeout", 10)
        if body is not None and "data" not in kw:
            kw["data"] = json.dumps(body)
            kw.setdefault("headers", {"Content-Type": "application/json"})
        return self.session.put(self.url(path), **kw)

    def consul(self):
        import consul  # py-consul

        return consul.Consul(host="127.0.0.1", port=self.http_port)

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Runs `roster ARGS...` (e.g. `services --http ...`) and returns its completed process."""
        return run_cli(*args, timeout=timeout)


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Runs the binary once; on timeout `subprocess.run` kills the child it started."""
    binary = roster_binary()
    if not binary.exists():
        pytest.fail(f"roster binary not found at {binary}; run `swift build` or set ROSTER_BIN")
    return subprocess.run(
        [str(binary), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
