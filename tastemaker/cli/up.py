"""`tastemaker up`: the whole loop in one command — embedded broker and Redis when none are
configured, the gRPC server, the stream processor, the reward joiner, and with `--demo`
simulated users, a live progress line and an off-policy report at the end."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import LINEAR
from tastemaker.cli.demo import DemoTraffic
from tastemaker.cli.live_checks import build_propensity_watch
from tastemaker.features.topics import Topics
from tastemaker.records.log_files import read_topic, write_export
from tastemaker.services.bootstrap import (
    Workers,
    build_joiner,
    build_learner,
    build_serving,
    build_stream_processor,
    kafka_security_of,
    prepare_topics,
    producer_for,
)
from tastemaker.services.config import Settings
from tastemaker.services.embedded import EmbeddedStack
from tastemaker.services.metrics import serve_metrics
from tastemaker.services.publisher import BackgroundPublisher
from tastemaker.stickers.chat_world import ChatWorld
from tastemaker.training.evaluation.evaluate import evaluate, format_report
from tastemaker.training.evaluation.sticker_ope import evaluate_stickers, format_sticker_report, sticker_decisions
from tastemaker.training.lifecycle.propensity_check import check_propensities

log = logging.getLogger(__name__)

#: rewarded decisions the closing report evaluates after SIGINT/SIGTERM, so that
#: `up` stops within its grace period however long it ran
SIGNAL_REPORT_DECISIONS = 1000
#: how often `up`'s live propensity self-check runs (`tastemaker check propensities --follow`: 30 s)
LIVE_CHECK_INTERVAL_S = 10.0
#: polls (up to 500 records each) the closing report's live check may take to catch up
LIVE_CHECK_CATCH_UP_POLLS = 20


def install_stop_signals(stop: threading.Event, grace_s: float) -> None:
    """SIGINT/SIGTERM ask for a clean stop; if the process is still running `grace_s` later (or a
    second signal comes), it exits at once with code 1: a shutdown never hangs."""

    def give_up(reason: str) -> None:
        log.error("%s: exiting now", reason)
        logging.shutdown()
        os._exit(1)

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            give_up(f"second {name} during shutdown")
        log.info("received %s, shutting down (at most %.0f s)", name, grace_s)
        stop.set()
        timer = threading.Timer(grace_s, give_up, args=(f"not stopped {grace_s:.0f} s after {name}",))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run_up(
    settings: Settings,
    demo: bool,
    duration_s: float | None,
    report_json: Path | None,
    export_logs: Path | None = None,
) -> int:
    stop = threading.Event()
    install_stop_signals(stop, settings.shutdown_grace_s)
    with EmbeddedStack(settings.kafka_bootstrap, settings.redis_url) as stack:
        embedded_redis = not settings.redis_url
        settings = settings.with_(kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url)
        log.info("kafka at %s, redis at %s", settings.kafka_bootstrap, settings.redis_url)
        prepare_topics(settings)
        serving = build_serving(settings)
        processor = build_stream_processor(settings)
        joiner = build_joiner(settings)
        learning = settings.strategy in LINEAR or settings.sticker_rerank != "static"
        learner = build_learner(settings) if learning else None
        workers = Workers()
        demo_traffic = None
        demo_workers = Workers()
        events_publisher = None
        # the propensity self-check follows the decisions as they are logged (its gauges on /metrics)
        watch = build_propensity_watch(settings, interval_s=LIVE_CHECK_INTERVAL_S)
        if settings.metrics_port:
            serve_metrics(serving, settings.metrics_port, workers, settings.metrics_host, extra=(watch,))
            log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
        try:
            serving.server.start()
            workers.start("stream-processor", processor.run)
            workers.start("reward-joiner", joiner.run)
            if learner is not None:
                workers.start("linear-learner", learner.run)
            workers.start("propensity-check", watch.run)
            print(f"tastemaker serving gRPC on {settings.grpc_host}:{serving.server.port}", file=sys.stderr, flush=True)
            if demo:
                events_publisher = BackgroundPublisher(producer_for(settings, "tastemaker-demo"))
                chat = None
                if serving.stickers is not None:
                    chat = ChatWorld(list(serving.stickers.catalog.values()))
                else:
                    log.warning(
                        "no sticker model (TASTEMAKER_STICKER_MODEL or a registry's stickers version): "
                        "the demo simulates the home page only; `make run` trains one on its first run"
                    )
                demo_traffic = DemoTraffic(
                    f"127.0.0.1:{serving.server.port}",
                    SimulatedWorld(),
                    events_publisher,
                    Topics(settings.topic_prefix).events,
                    chat=chat,
                )
                demo_workers.start("demo-traffic", demo_traffic.run)
            started = time.monotonic()
            last_line = 0.0
            while not stop.is_set():
                elapsed = time.monotonic() - started
                if duration_s is not None and elapsed >= duration_s:
                    break
                if _broker_over_cap(stack, settings.embedded_broker_max_mb):
                    break
                if demo_traffic is not None and elapsed - last_line >= 2.0:
                    last_line = elapsed
                    s = demo_traffic.stats
                    print(
                        f"[{elapsed:5.0f}s] decisions {serving.home.decisions_served}  clicks {s.clicks}  "
                        + (
                            f"stickers {s.sticker_requests} sent {s.sticker_sends}  "
                            if serving.stickers is not None
                            else ""
                        )
                        + f"events→features {processor.stats.applied}  rewarded {joiner.stats.rewarded} "
                        f"(joined outcomes {joiner.stats.outcomes_joined})  errors {s.errors}"
                        + (
                            f"  worker restarts {sum(workers.restarts.values())}"
                            if any(workers.restarts.values())
                            else ""
                        ),
                        file=sys.stderr,
                        flush=True,
                    )
                stop.wait(0.2)
        finally:
            demo_workers.stop()
            if events_publisher is not None:
                events_publisher.close()
            serving.stop()
            workers.stop(timeout_s=5.0)
        if embedded_redis:
            # The embedded Redis, and with it the pending joins, ends with us: close every window now.
            _drain_joiner(joiner)
        # the decisions logged since its last poll (a bounded catch-up: a signal's grace is short)
        for _ in range(LIVE_CHECK_CATCH_UP_POLLS):
            if not watch.consume_once(timeout_s=1.0):
                break
        live_check = watch.check_now()
        watch.close()
        processor.close()
        joiner.close()
        if learner is not None:
            learner.close()
        rewarded = read_topic(
            settings.kafka_bootstrap, Topics(settings.topic_prefix).rewarded, kafka_security_of(settings)
        )
        if export_logs is not None:
            count = write_export(rewarded, export_logs)
            log.info("exported %d rewarded decisions to %s", count, export_logs)
        # stopped by a signal, the report must fit in the shutdown grace: the latest decisions only
        evaluated = rewarded[-SIGNAL_REPORT_DECISIONS:] if stop.is_set() else rewarded
        if len(evaluated) < len(rewarded):
            log.warning(
                "stopped by a signal: the report evaluates the latest %d of %d rewarded decisions "
                "(--export-logs FILE, then `tastemaker evaluate --logs FILE`, evaluates them all)",
                len(evaluated),
                len(rewarded),
            )
        summary = _summary(
            rewarded, serving.home.decisions_served, serving.feedback.outcomes_reported, joiner, evaluated
        )
        summary["strategy"] = settings.strategy
        summary["live_propensity_check"] = {
            **watch.stats.__dict__,
            "last_passed": live_check.passed,
            "last_lines": live_check.lines(limit=5),
        }
        if learner is not None:
            summary["learner"] = {"decisions": learner.stats.decisions, "rows_applied": learner.stats.rows_applied}
        if summary.get("evaluation"):
            print(format_report(summary["evaluation"]), file=sys.stderr)
        if summary.get("propensity_check"):
            print("\n".join(summary["propensity_check"]["lines"]), file=sys.stderr)
        live = summary["live_propensity_check"]
        print(
            f"live propensity self-check: {live['checks']} checks of {live['decisions_seen']} decisions as they "
            f"were logged, {live['checks_failed']} failed, {live['mismatches']} mismatches",
            file=sys.stderr,
        )
        if summary.get("stickers"):
            print(format_sticker_report(summary["stickers"]), file=sys.stderr)
        if report_json is not None:
            report_json.write_text(json.dumps(summary, indent=2))
            log.info("wrote %s", report_json)
    return 0


def _broker_over_cap(stack: EmbeddedStack, max_mb: int) -> bool:
    """Whether the embedded broker, which keeps every record in memory, has reached `max_mb`."""
    broker = stack.broker
    if broker is None:
        return False
    held = broker.resident_mb()
    if held < max_mb:
        return False
    log.error(
        "the embedded broker holds %.0f MB (TASTEMAKER_EMBEDDED_BROKER_MAX_MB=%d): it keeps every record in "
        "memory, so `up` stops here. For long runs point TASTEMAKER_KAFKA_BOOTSTRAP at a real Kafka.",
        held,
        max_mb,
    )
    return True


def _drain_joiner(joiner: Any, quiet_polls: int = 3) -> None:
    quiet = 0
    while quiet < quiet_polls:
        quiet = quiet + 1 if joiner.consume_once(timeout_s=0.5) == 0 else 0
    closed = joiner.close_due(now_ms=2**62)
    while closed:
        closed = joiner.close_due(now_ms=2**62)


def _propensity_check(decisions: list[Any]) -> dict[str, Any] | None:
    if not any(d.decision.surface == "home" for d in decisions):
        return None
    checked = check_propensities(decisions)
    return {**checked.as_dict(), "lines": checked.lines(limit=5)}


def _summary(
    rewarded: list[Any], decisions: int, outcomes: int, joiner: Any, evaluated: list[Any] | None = None
) -> dict[str, Any]:
    evaluated = rewarded if evaluated is None else evaluated
    summary: dict[str, Any] = {
        "decisions_served": decisions,
        "outcomes_reported": outcomes,
        "rewarded_decisions": len(rewarded),
        "outcomes_joined": sum(len(r.outcomes) for r in rewarded),
        "mean_reward": (sum(r.reward for r in rewarded) / len(rewarded)) if rewarded else None,
        "joiner_rejected": joiner.stats.rejected,
        "evaluated_decisions": len(evaluated),
        "evaluation": evaluate(evaluated) if any(d.decision.surface == "home" for d in evaluated) else None,
        # are the logged propensities right? (`tastemaker check propensities` on the same decisions)
        "propensity_check": _propensity_check(evaluated),
        # sticker decisions, sends and the off-policy estimates for the sticker logging policy
        "stickers": evaluate_stickers(evaluated) if sticker_decisions(evaluated) else None,
    }
    return summary
