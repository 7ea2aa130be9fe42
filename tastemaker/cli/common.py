"""What every command shares: the environment help, usage errors, settings from flags, the worker loop."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tastemaker.services.config import Settings, help_epilog

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

log = logging.getLogger("tastemaker")

EPILOG = help_epilog()


class UsageError(Exception):
    """Bad input from the command line: exit code 2 and a one-line reason."""


def settings_of(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        grpc_port=getattr(args, "port", None),
        epsilon=getattr(args, "epsilon", None),
        strategy=getattr(args, "strategy", None),
        reward_window_s=getattr(args, "reward_window_s", None),
        insecure=True if getattr(args, "insecure", False) else None,
    )


def require_infra(settings: Settings) -> None:
    if not settings.kafka_bootstrap or not settings.redis_url:
        raise UsageError(
            "set TASTEMAKER_KAFKA_BOOTSTRAP and TASTEMAKER_REDIS_URL (or use `tastemaker up` for an embedded stack)"
        )


def wait_for_signal() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def metrics_port(args: argparse.Namespace, settings: Settings) -> int:
    """`--metrics-port`, else TASTEMAKER_METRICS_PORT (0: no metrics)."""
    port = getattr(args, "metrics_port", None)
    port = settings.metrics_port if port is None else port
    if not 0 <= port < 65536:
        raise UsageError(f"--metrics-port must be a port number, got {port}")
    return int(port)


def run_worker(
    args: argparse.Namespace,
    build: Callable[[Settings], object],
    metrics: Callable[[Any], Collector] | None = None,
    name: str = "stream worker",
) -> int:
    """Build a stream worker — patiently, while its Redis or broker does not answer yet
    (`features.patience`) — serve its metrics when asked (`metrics` makes its collector), and run it
    until SIGINT/SIGTERM."""
    from tastemaker.features.patience import start_patiently
    from tastemaker.services.bootstrap import prepare_topics

    settings = settings_of(args)
    require_infra(settings)
    port = metrics_port(args, settings) if metrics is not None else 0
    stop = wait_for_signal()

    def start() -> object:
        from tastemaker.features.redis_connect import connect

        prepare_topics(settings)  # the broker answers
        probe = connect(settings.redis_url, socket_timeout=5.0)
        try:
            probe.ping()  # and Redis (a cluster client has reached a seed when it is built)
        finally:
            probe.close()
        return build(settings)

    worker = start_patiently(name, start, stop)
    if worker is None:  # told to stop before it could start
        return 0
    if port and metrics is not None:
        from tastemaker.features.metrics import serve_registry, worker_registry

        serve_registry(worker_registry(metrics(worker)), port, settings.metrics_host)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, port)
    worker.run(stop)  # type: ignore[attr-defined]
    return 0


def load_rewarded(args: argparse.Namespace) -> list:
    from tastemaker.features.topics import Topics
    from tastemaker.records.log_files import LogFormatError, read_export, read_topic

    if args.logs is not None:
        if not args.logs.is_file():
            raise UsageError(f"--logs {args.logs}: no such file")
        try:
            return read_export(args.logs)
        except LogFormatError as exc:
            raise UsageError(str(exc)) from exc
    settings = settings_of(args)
    if not settings.kafka_bootstrap:
        raise UsageError("give --logs FILE, or set TASTEMAKER_KAFKA_BOOTSTRAP to read tastemaker.rewarded")
    from tastemaker.services.bootstrap import kafka_security_of

    return read_topic(settings.kafka_bootstrap, Topics(settings.topic_prefix).rewarded, kafka_security_of(settings))
