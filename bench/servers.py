"""Throw-away servers for benchmarks and fault tests: a private redis-server, gunicorn instances.

Nothing here touches the shared Redis on 6379: each PrivateRedis is its own redis-server on a
free port of the given range, in a temporary folder, killed at the end.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Ports this project's helpers may use for their own redis-servers and web servers.
REDIS_PORTS = range(6391, 6400)
WEB_PORTS = range(8161, 8170)


def manage(env: dict, *args: str, stdin: str | None = None) -> str:
    """Run `manage.py <args>` of this checkout with env; its output, or RuntimeError with the tail of both streams."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin, text=True,
                            capture_output=True)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def free_port(ports: range) -> int:
    """The first port of the range nobody listens on (raises if all are taken)."""
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def wait_until(condition, *, timeout: float, message: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s: {message}")


class PrivateRedis:
    """A redis-server of our own that a test may kill, restart, freeze (SIGSTOP) and thaw."""

    def __init__(self, ports: range = REDIS_PORTS):
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port(ports)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = tempfile.mkdtemp(prefix=f"redis-{self.port}-")
        self.process: subprocess.Popen | None = None

    def start(self) -> "PrivateRedis":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, timeout=10, message=f"redis-server on {self.port} answers")
        return self

    def ping(self) -> bool:
        import redis

        try:
            return redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: gone at once, with everything it held (no persistence)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but nothing answers (a hung Redis)."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class Gunicorn:
    """`gunicorn movierec.wsgi` with the project's config on a port of ours, for benches and fault tests."""

    def __init__(self, env: dict, port: int, log_path: Path, workers: int = 2, root: Path = ROOT):
        self.env, self.port, self.log_path, self.workers, self.root = env, port, log_path, workers, Path(root)
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "Gunicorn":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "movierec.wsgi", "-c", str(self.root / "deploy" / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers)],
            cwd=self.root, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
        )

        def answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    return response.status == 200
            except (urllib.error.URLError, OSError):
                return False

        wait_until(answers, timeout=timeout, message=f"gunicorn on {self.port} answers", interval=0.2)
        return self

    def kill(self) -> None:
        """SIGKILL the master and its workers, as a machine that loses power."""
        if self.process and self.process.poll() is None:
            for pid in _children(self.process.pid):
                _signal(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(line) for line in out.split()]


def _signal(pid: int, sig) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
