"""What every command shares: the environment help, usage errors, settings from flags, the worker loop."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tastemaker.services.config import Settings

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

log = logging.getLogger("tastemaker")

EPILOG = """environment:
  TASTEMAKER_KAFKA_BOOTSTRAP   Kafka bootstrap servers (host:port). Unset: `up` starts an embedded broker.
  TASTEMAKER_REDIS_URL         Redis URL (redis://host:port/db, or redis+cluster://host:port,host:port for a
                               Redis Cluster). Unset: `up` starts an embedded Redis.
  TASTEMAKER_REDIS_WAIT_REPLICAS  replicas that must hold the processor's writes before it commits their
                               offsets (default 0; set 1 on a cluster), within TASTEMAKER_REDIS_WAIT_TIMEOUT_MS
  TASTEMAKER_TOPIC_PREFIX      topic prefix (default tastemaker → tastemaker.events, .decisions, ...)
  TASTEMAKER_STRATEGY          home exploration: epsilon-greedy (default), softmax, linucb, thompson
  TASTEMAKER_EPSILON           ε of epsilon-greedy (default 0.1); TASTEMAKER_TEMPERATURE (softmax, 1.0),
                               TASTEMAKER_UCB_ALPHA (linucb, 1.0), TASTEMAKER_THOMPSON_SCALE (1.0)
  TASTEMAKER_PROPENSITY_FLOOR  least probability of any candidate at any position (default 0; max 0.1)
  TASTEMAKER_REWARD_MODEL      reward model artifact directory (`train reward-model`); unset: engagement-linear
  TASTEMAKER_MODEL_REGISTRY    registry directory: serving follows its current version (`models promote`)
  TASTEMAKER_STICKER_MODEL     sticker bundle (`stickers train --out`) for SuggestStickers;
                               TASTEMAKER_STICKER_EPSILON its own ε (default 0.1; 0: greedy, for evaluation);
                               TASTEMAKER_STICKER_RERANK learned (default), static or side-by-side;
                               TASTEMAKER_STICKER_FORGET the learned re-rank's discount (default 0.999)
  TASTEMAKER_SHADOW_MODEL      a candidate artifact run beside the live model, logged never shown;
                               TASTEMAKER_SHADOW_MODE=apprentice lets it take over once it agrees often enough
  TASTEMAKER_REWARD_WINDOW_S   seconds an outcome may follow its decision (default 30)
  TASTEMAKER_GRPC_HOST         address the gRPC server binds (default 127.0.0.1; 0.0.0.0 for every interface:
                               then TLS and tokens are required, or --insecure / TASTEMAKER_INSECURE=1)
  TASTEMAKER_TLS_CERT/_KEY     PEM certificate chain and key: gRPC over TLS (re-read on change or SIGHUP);
                               TASTEMAKER_TLS_CLIENT_CA makes it mutual TLS
  TASTEMAKER_AUTH_TOKENS_FILE  per-client bearer tokens and scopes (see `tastemaker/services/security.py`);
                               TASTEMAKER_OPEN_REFLECTION=0 limits reflection to `admin` clients
  TASTEMAKER_DECISION_KEY      signs decision ids (>= 16 bytes, shared by replicas and the joiner): outcomes
                               only for decisions served to the same client, within the reward window
  TASTEMAKER_USER_ID_KEY       pseudonymise user ids in Redis and decision logs (keyed HMAC, >= 16 bytes);
                               TASTEMAKER_LOGGED_CONTEXT_KEYS=k1,k2 logs only those context keys (default *)
  TASTEMAKER_GRPC_PORT         gRPC port (default 50051); TASTEMAKER_LOG_LEVEL (default INFO)
  TASTEMAKER_KAFKA_CLIENT      kafka-python (default) or confluent (librdkafka; faster)
  TASTEMAKER_KAFKA_SECURITY_PROTOCOL  PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL; with
                               TASTEMAKER_KAFKA_SASL_MECHANISM/_USERNAME/_PASSWORD, TASTEMAKER_KAFKA_SSL_CAFILE/
                               _CERTFILE/_KEYFILE (both adapters)
  TASTEMAKER_REWARD_MIN/_MAX   valid range of one reported reward (default -1000, 1000); others are refused
  TASTEMAKER_FEATURE_TIMEOUT_S budget of one feature read on the request path (default 0.05); after
                               TASTEMAKER_FEATURE_BREAKER_FAILURES (3) failures in a row ranking skips
                               Redis and probes it every TASTEMAKER_FEATURE_BREAKER_PROBE_S (1.0)
  TASTEMAKER_SPOOL_PATH        keep decision logs and outcomes waiting for Kafka in this SQLite file (crash-safe,
                               survives a broker outage and a restart); TASTEMAKER_SPOOL_MAX_RECORDS (1,000,000)
  TASTEMAKER_SHUTDOWN_GRACE_S  `up` exits at most this long after SIGTERM/SIGINT (default 15)
  TASTEMAKER_METRICS_PORT      Prometheus metrics of this process on this port (default 0: off), bound to
                               TASTEMAKER_METRICS_HOST (default 127.0.0.1; 0.0.0.0 in a container)
  TASTEMAKER_EMBEDDED_BROKER_MAX_MB  `up` stops once its embedded broker, which keeps every record in
                               memory, holds this much (default 1024)
"""


class UsageError(Exception):
    """Bad input from the command line: exit code 2 and a one-line reason."""


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        grpc_port=getattr(args, "port", None),
        epsilon=getattr(args, "epsilon", None),
        strategy=getattr(args, "strategy", None),
        reward_window_s=getattr(args, "reward_window_s", None),
        insecure=True if getattr(args, "insecure", False) else None,
    )


def _require_infra(settings: Settings) -> None:
    if not settings.kafka_bootstrap or not settings.redis_url:
        raise UsageError(
            "set TASTEMAKER_KAFKA_BOOTSTRAP and TASTEMAKER_REDIS_URL (or use `tastemaker up` for an embedded stack)"
        )


def _wait_for_signal() -> threading.Event:
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


def _run_worker(
    args: argparse.Namespace,
    build: Callable[[Settings], object],
    metrics: Callable[[Any], Collector] | None = None,
) -> int:
    """Build a stream worker, serve its metrics when asked (`metrics` makes its collector), and run
    it until SIGINT/SIGTERM."""
    from tastemaker.services.bootstrap import prepare_topics

    settings = _settings(args)
    _require_infra(settings)
    port = metrics_port(args, settings) if metrics is not None else 0
    prepare_topics(settings)
    worker = build(settings)
    if port and metrics is not None:
        from tastemaker.features.metrics import serve_registry, worker_registry

        serve_registry(worker_registry(metrics(worker)), port, settings.metrics_host)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, port)
    stop = _wait_for_signal()
    worker.run(stop)  # type: ignore[attr-defined]
    return 0


def _load_rewarded(args: argparse.Namespace) -> list:
    from tastemaker.features.topics import Topics
    from tastemaker.training.logs import LogFormatError, read_export, read_topic

    if args.logs is not None:
        if not args.logs.is_file():
            raise UsageError(f"--logs {args.logs}: no such file")
        try:
            return read_export(args.logs)
        except LogFormatError as exc:
            raise UsageError(str(exc)) from exc
    settings = _settings(args)
    if not settings.kafka_bootstrap:
        raise UsageError("give --logs FILE, or set TASTEMAKER_KAFKA_BOOTSTRAP to read tastemaker.rewarded")
    from tastemaker.services.bootstrap import kafka_security_of

    return read_topic(settings.kafka_bootstrap, Topics(settings.topic_prefix).rewarded, kafka_security_of(settings))
