"""Starting a stream worker whose Redis or broker is not there yet (a cluster URL whose first seed
is down, a broker still electing, a pod scheduled before its dependencies): try again with a
growing pause, one clear log line per attempt, until it starts or the process is told to stop.
A mistake in the configuration is not retried: it fails at once, as before."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from tastemaker.messaging import broker_unreachable_errors

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_PAUSE_S = 1.0
MAX_PAUSE_S = 30.0


def _unreachable_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the other side does not answer" for the clients installed."""
    # a refused or reset connection, a timeout, a name that does not resolve yet (a Service being
    # created); not any OSError: a missing certificate file is a mistake, not a wait
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror]
    try:
        from redis import exceptions as redis_errors

        kinds += [redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ClusterError]
        kinds += [redis_errors.RedisClusterException, redis_errors.BusyLoadingError]
    except ImportError:  # pragma: no cover - redis is a core dependency
        pass
    kinds += broker_unreachable_errors()
    return tuple(kinds)


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` says a service did not answer (worth waiting for), not that something is wrong."""
    return isinstance(exc, _unreachable_types())


def start_patiently(
    name: str,
    start: Callable[[], T],
    stop: threading.Event,
    first_pause_s: float = FIRST_PAUSE_S,
    max_pause_s: float = MAX_PAUSE_S,
) -> T | None:
    """`start()`, again after 1, 2, 4 … (at most 30) seconds while Redis or Kafka do not answer; None
    when `stop` is set while waiting. Any other exception is raised at once."""
    pause, attempt = first_pause_s, 1
    while True:
        try:
            started = start()
        except Exception as exc:
            if not unreachable(exc):
                raise
            log.warning(
                "%s cannot start yet (attempt %d): %s: %s; trying again in %.0f s",
                name, attempt, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", pause,
            )  # fmt: skip
        else:
            if attempt > 1:
                log.info("%s started after %d attempts", name, attempt)
            return started
        if stop.wait(pause):
            return None
        pause, attempt = min(pause * 2, max_pause_s), attempt + 1
