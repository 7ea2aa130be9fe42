"""`tastemaker` commands: the stream workers (features, joiner, learner) and event tools."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tastemaker.cli.common import (
    UsageError,
    log,
    require_infra,
    run_worker,
    settings_of,
    wait_for_signal,
)


def cmd_features_run(args: argparse.Namespace) -> int:
    from tastemaker.services.bootstrap import build_stream_processor

    if args.processes < 1:
        raise UsageError(f"--processes must be at least 1, got {args.processes}")
    settings = settings_of(args)
    if args.metrics_port is None and settings.metrics_port:
        args.metrics_port = settings.metrics_port
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536 - args.processes:
        raise UsageError(f"--metrics-port must be a free port number, got {args.metrics_port}")
    if args.processes == 1:
        if args.metrics_port is None:
            return run_worker(args, build_stream_processor, name="stream processor")
        from tastemaker.features.metrics import ProcessorMetrics

        metrics = ProcessorMetrics()
        metrics.serve(args.metrics_port, settings.metrics_host)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, args.metrics_port)
        return run_worker(
            args, lambda settings: build_stream_processor(settings, on_status=metrics.update), name="stream processor"
        )
    from tastemaker.features.patience import start_patiently
    from tastemaker.services.bootstrap import prepare_topics
    from tastemaker.services.supervisor import supervise

    settings = settings_of(args)
    require_infra(settings)
    stop = wait_for_signal()

    def topics_ready() -> bool:
        prepare_topics(settings)
        return True

    if start_patiently("stream processors", topics_ready, stop) is None:
        return 0
    command = [sys.executable, "-m", "tastemaker.cli", "features", "run", "--processes", "1"]
    commands = [
        command + ([] if args.metrics_port is None else ["--metrics-port", str(args.metrics_port + i)])
        for i in range(args.processes)
    ]
    return supervise(commands, stop)


def cmd_features_get(args: argparse.Namespace) -> int:
    from tastemaker.features.redis_connect import connect
    from tastemaker.features.store import FeatureStore

    settings = settings_of(args)
    if not settings.redis_url:
        raise UsageError("set TASTEMAKER_REDIS_URL to the Redis holding the features")
    from tastemaker.services.bootstrap import log_policy_of

    pseudonyms = log_policy_of(settings).pseudonyms  # the user's pseudonym when TASTEMAKER_USER_ID_KEY is set
    store = FeatureStore(connect(settings.redis_url), namespace=settings.redis_namespace, pseudonyms=pseudonyms)
    print(json.dumps(store.read(args.user).as_json(), indent=2, sort_keys=True))
    return 0


def cmd_features_status(args: argparse.Namespace) -> int:
    from tastemaker.features.redis_connect import connect
    from tastemaker.features.status import processor_statuses
    from tastemaker.features.topics import Topics
    from tastemaker.messaging import group_lag
    from tastemaker.services.bootstrap import consumer_group, kafka_security_of

    settings = settings_of(args)
    require_infra(settings)
    processors = processor_statuses(connect(settings.redis_url), settings.redis_namespace)
    lag = group_lag(
        settings.kafka_bootstrap,
        consumer_group(settings, "features"),
        Topics(settings.topic_prefix).events,
        kafka_security_of(settings),
    )
    status = {"group_lag": lag, "processors": processors}
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"consumer group lag: {lag['total']} records over {len(lag['partitions'])} partitions")
    print(f"{'processor':<32}{'events/s':>10}{'lag':>8}{'consumed':>11}{'rejected':>10}{'age s':>7}")
    for name, p in sorted(processors.items()):
        print(
            f"{name:<32}{p['events_per_s']:>10.0f}{p['lag']:>8}{p['consumed']:>11}{p['rejected']:>10}{p['age_s']:>7.1f}"
        )
    return 0


JOINER_HELP = {
    "decisions": "Decision logs consumed",
    "outcomes": "Outcomes consumed",
    "outcomes_joined": "Outcomes joined to their decision within its reward window",
    "rewarded": "Rewarded decisions published",
    "defaulted": "Rewarded decisions that got the default reward (no outcome in the window)",
    "late": "Outcomes that came after their reward window closed (dead-lettered)",
    "activations": "Activations of deferred decisions consumed (Feedback.Activate)",
    "unactivated": "Deferred decisions whose window closed without an activation (kept, marked)",
    "rejected": "Records sent to the dead-letter topic",
}
LEARNER_HELP = {
    "decisions": "Rewarded decisions learned from",
    "rows_applied": "Rows applied to the shared posterior",
    "skipped": "Rows sent to the dead-letter topic (non-finite features or rewards)",
    "failures": "Batches that failed and were consumed again",
    "unactivated": "Deferred decisions never activated, not learned from",
}


def cmd_joiner_run(args: argparse.Namespace) -> int:
    from tastemaker.features.metrics import StatsCollector
    from tastemaker.services.bootstrap import build_joiner

    return run_worker(
        args,
        build_joiner,
        metrics=lambda joiner: StatsCollector(
            "joiner",
            lambda: joiner.stats,
            JOINER_HELP,
            {"pending": ("Decisions waiting for their reward window", joiner.pending)},
        ),
        name="reward joiner",
    )


def cmd_learner_run(args: argparse.Namespace) -> int:
    from tastemaker.features.metrics import StatsCollector
    from tastemaker.services.bootstrap import build_learner

    return run_worker(
        args,
        build_learner,
        metrics=lambda learner: StatsCollector("learner", lambda: learner.stats, LEARNER_HELP),
        name="online learner",
    )


def cmd_events_produce(args: argparse.Namespace) -> int:
    from tastemaker.features.topics import Topics
    from tastemaker.messaging.codec import JSON_HEADERS
    from tastemaker.services.bootstrap import producer_for

    settings = settings_of(args)
    if not settings.kafka_bootstrap:
        raise UsageError("set TASTEMAKER_KAFKA_BOOTSTRAP to the broker to produce to")
    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")
    producer = producer_for(settings, "tastemaker-cli")
    topic = Topics(settings.topic_prefix).events
    count = 0
    with args.file.open("rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            key = _user_key(line)
            producer.send(topic, line.strip(), key=key, headers=JSON_HEADERS)
            count += 1
    producer.flush()
    producer.close()
    print(f"produced {count} events to {topic}")
    return 0


def _user_key(line: bytes) -> bytes | None:
    """Key a record by its user when the line is readable; unreadable lines still go, to be dead-lettered."""
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    user = parsed.get("userId") or parsed.get("user_id")
    return str(user).encode() if user else None


def add_features(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    features = sub.add_parser("features", help="the Kafka → Redis feature stream processor")
    features_sub = features.add_subparsers(dest="features_command", required=True, metavar="ACTION")
    features_run = features_sub.add_parser("run", help="consume tastemaker.events into Redis")
    features_run.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processes in the consumer group (default 1); they share the partitions",
    )
    features_run.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics here (process i of N on PORT+i); default TASTEMAKER_METRICS_PORT (0: off)",
    )
    features_run.set_defaults(func=cmd_features_run)
    features_get = features_sub.add_parser("get", help="print one user's features as JSON")
    features_get.add_argument("--user", required=True, help="user id")
    features_get.set_defaults(func=cmd_features_get)
    features_status = features_sub.add_parser("status", help="consumer lag and events/s of the processors")
    features_status.add_argument("--json", action="store_true", help="print JSON")
    features_status.set_defaults(func=cmd_features_status)


def _add_worker(sub: argparse._SubParsersAction, name: str, about: str, run_help: str, run: Any) -> None:  # type: ignore[type-arg]
    """`tastemaker NAME run [--metrics-port P]`: a stream worker group with its one action."""
    group = sub.add_parser(name, help=about)
    actions = group.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")
    action = actions.add_parser("run", help=run_help)
    action.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics here (default TASTEMAKER_METRICS_PORT; 0: off)"
    )
    action.set_defaults(func=run)


def add_joiner(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _add_worker(sub, "joiner", "the decisions ⨝ outcomes reward joiner",
                "join outcomes to decisions → tastemaker.rewarded", cmd_joiner_run)  # fmt: skip


def add_learner(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _add_worker(sub, "learner", "online learning of the linear strategies (LinUCB, Thompson)",
                "tastemaker.rewarded → the shared posterior in Redis", cmd_learner_run)  # fmt: skip


def add_events(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    events = sub.add_parser("events", help="event tools")
    events_sub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    produce = events_sub.add_parser("produce", help="publish one UserEvent per line (protobuf JSON mapping)")
    produce.add_argument("file", type=Path, metavar="FILE.jsonl")
    produce.set_defaults(func=cmd_events_produce)
