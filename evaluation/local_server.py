"""The one launcher for the local server, used by evaluation/benchmark.py,
evaluation/loadtest.py and the tests: `python -m scripts.serve` in a subprocess on a free
loopback port, waited for (`GET /health` answers 200), its output and memory read, stopped.

    with LocalServer(serve_argv(free_port()), env=env) as server:   # waits until healthy
        requests.post(server.url + "/predict", ...)
        server.rss(), server.output()

`RunningServer(url, pid)` is the same view of a server started elsewhere (loopback only):
health and memory, nothing started or stopped.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_argv(port: int, *extra: str, host: str = "127.0.0.1", python: str = sys.executable) -> list[str]:
    """The server's command line, run from the repository root."""
    return [python, "-m", "scripts.serve", "--host", host, "--port", str(port), *extra]


class ServerError(RuntimeError):
    """The server exited during start-up or did not become healthy in time."""


def listening_pid(port: int) -> int | None:
    """The pid listening on a loopback `port`, when psutil may see it."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return conn.pid
    except (psutil.Error, PermissionError):
        pass
    return None


class RunningServer:
    """A server answering at `url`; `pid` (found from the port when not given) is for its
    memory. `health_statuses` records what `wait_healthy` saw, `first_loading_body` the
    first 503 answer's text."""

    def __init__(self, url: str, pid: int | None = None, *, startup_timeout: float = 300.0):
        self.url = url.rstrip("/")
        self.port = urlparse(self.url).port or 80
        self.pid = pid if pid is not None else listening_pid(self.port)
        self.startup_timeout = startup_timeout
        self.health_statuses: list[int] = []
        self.first_loading_body: str | None = None

    def exited(self) -> str | None:
        """Why the server cannot come up any more (None: it may)."""
        return None

    def wait_healthy(self, timeout: float | None = None, interval: float = 0.1) -> RunningServer:
        import requests

        timeout = self.startup_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            gone = self.exited()
            if gone:
                raise ServerError(gone)
            try:
                response = requests.get(self.url + "/health", timeout=5)
            except requests.RequestException:
                time.sleep(interval)
                continue
            self.health_statuses.append(response.status_code)
            if response.status_code == 503 and self.first_loading_body is None:
                self.first_loading_body = response.text
            if response.status_code == 200:
                return self
            time.sleep(interval)
        raise ServerError(f"the server at {self.url} was not healthy after {timeout:.0f} s{self._tail()}")

    def rss(self) -> int | None:
        """Resident memory in bytes of the server and its children (None: unknown)."""
        if self.pid is None:
            return None
        import psutil

        try:
            proc = psutil.Process(self.pid)
            return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            return None

    def stop(self) -> None:
        """Nothing to stop: this server was started elsewhere."""

    def _tail(self) -> str:
        return ""

    def __enter__(self) -> RunningServer:
        try:
            return self.wait_healthy()
        except BaseException:
            self.stop()  # a server that never came up is not left running
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


class LocalServer(RunningServer):
    """`argv` (default: `serve_argv` on a free port) in a subprocess from the repository
    root, stdout and stderr to `log_path` (default: a new temporary file, kept)."""

    def __init__(self, argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None,
                 log_path: str | Path | None = None, startup_timeout: float = 300.0):
        self.argv = list(argv) if argv is not None else serve_argv(free_port())
        port = int(self.argv[self.argv.index("--port") + 1])
        if log_path is None:
            handle, log_path = tempfile.mkstemp(prefix="local-server-", suffix=".log")
            os.close(handle)
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=dict(env) if env is not None else None,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        super().__init__(f"http://127.0.0.1:{port}", self.proc.pid, startup_timeout=startup_timeout)

    def output(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def exited(self) -> str | None:
        if self.proc.poll() is None:
            return None
        return f"the server exited with {self.proc.returncode}{self._tail()}"

    def _tail(self) -> str:
        return f" (log: {self.log_path}):\n{self.output()[-3000:]}"

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
