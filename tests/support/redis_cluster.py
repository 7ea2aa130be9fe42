"""A real Redis Cluster on loopback for the tests and benchmarks: Debian's `redis-server` started
six times (`--cluster-enabled yes`), formed with `redis-cli --cluster create … --cluster-replicas 1`
(3 masters, each with one replica), stopped and removed afterwards. `kill_master_of(key)` SIGKILLs
the master holding a key and waits until its replica has taken over."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from tastemaker.services.embedded import free_ports


class LocalCluster:
    def __init__(self, directory: Path, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1500) -> None:
        for binary in ("redis-server", "redis-cli"):
            if shutil.which(binary) is None:
                raise RuntimeError(f"{binary} is not on PATH: install Debian's redis-server and redis-tools")
        self.directory = directory
        self.size = masters * (1 + replicas)
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.ports: list[int] = []
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def _start_node(self, port: int) -> None:
        node_dir = self.directory / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [
                "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(self.node_timeout_ms),
                "--dir", str(node_dir), "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--cluster-replica-validity-factor", "0", "--loglevel", "warning",
                "--repl-diskless-sync-delay", "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> LocalCluster:
        for attempt in range(5):
            # a node also listens on its port + 10000 (the cluster bus): both ranges must be free
            first = free_ports(self.size)
            if first + self.size + 10000 < 65536 and all(_free(p + 10000) for p in range(first, first + self.size)):
                break
            if attempt == 4:
                raise RuntimeError("no free ports for a cluster and its bus")
        self.ports = list(range(first, first + self.size))
        for port in self.ports:
            self._start_node(port)
        for port in self.ports:
            _wait(lambda p=port: redis.Redis(port=p).ping(), f"redis-server on {port}")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_healthy(with_replicas=True)
        return self

    def client(self) -> RedisCluster:
        return RedisCluster(host="127.0.0.1", port=self.ports[0])

    def wait_healthy(self, timeout_s: float = 60.0, with_replicas: bool = False) -> None:
        """Every running node says cluster_state:ok and every slot has a running master (with
        `with_replicas`, each master also has its replicas connected and in sync)."""

        def healthy() -> bool:
            alive = [p for p, proc in self.processes.items() if proc.poll() is None]
            for port in alive:
                if redis.Redis(port=port).execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    return False
            slots = redis.Redis(port=alive[0]).execute_command("CLUSTER SLOTS")
            covered = sum(int(end) - int(start) + 1 for start, end, *_ in slots)
            masters = {int(entry[2][1]) for entry in slots}
            if covered != 16384 or not masters <= set(alive):
                return False
            if with_replicas:
                for port in masters:
                    info = redis.Redis(port=port).info("replication")
                    online = [k for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                              and v.get("state") == "online"]  # fmt: skip
                    if len(online) < self.replicas:
                        return False
            return True

        _wait(healthy, "a healthy cluster", timeout_s)

    def master_port_of(self, key: str) -> int:
        client = self.client()
        try:
            return int(client.get_node_from_key(key).port)
        finally:
            client.close()

    def kill_master_of(self, key: str) -> int:
        """SIGKILL the master holding `key`; return its port once a replica has been promoted."""
        port = self.master_port_of(key)
        self.processes[port].send_signal(signal.SIGKILL)
        self.processes[port].wait()
        self.wait_healthy()
        return port

    def restart(self, port: int) -> None:
        """Start a killed node again (it rejoins as a replica of whoever took over its slots)."""
        self._start_node(port)
        _wait(lambda: redis.Redis(port=port).ping(), f"redis-server on {port}")
        self.wait_healthy(with_replicas=True)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _wait(probe: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if probe():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError, IndexError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)
