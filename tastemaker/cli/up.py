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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import LINEAR
from tastemaker.cli.demo import DemoTraffic
from tastemaker.cli.live_checks import build_propensity_watch
from tastemaker.features.joiner import RewardJoiner
from tastemaker.features.learner import LinearLearner
from tastemaker.features.processor import StreamProcessor
from tastemaker.features.topics import Topics
from tastemaker.records.log_files import read_topic, write_export
from tastemaker.services.bootstrap import (
    Serving,
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
from tastemaker.training.lifecycle.propensity_check import PropensityCheck, check_propensities
from tastemaker.training.lifecycle.propensity_watch import PropensityWatch

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
    """The whole loop in one process tree until `duration_s`, a signal or the embedded broker's cap;
    then the closing report (and `--export-logs`)."""
    stop = threading.Event()
    install_stop_signals(stop, settings.shutdown_grace_s)
    with EmbeddedStack(settings.kafka_bootstrap, settings.redis_url) as stack:
        embedded_redis = not settings.redis_url
        settings = settings.with_(kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url)
        log.info("kafka at %s, redis at %s", settings.kafka_bootstrap, settings.redis_url)
        prepare_topics(settings)
        loop = _Loop.build(settings)
        try:
            loop.start(settings, demo)
            started = time.monotonic()
            last_line = 0.0
            while not stop.is_set():
                elapsed = time.monotonic() - started
                if duration_s is not None and elapsed >= duration_s:
                    break
                if _broker_over_cap(stack, settings.embedded_broker_max_mb):
                    break
                if elapsed - last_line >= 2.0:
                    last_line = elapsed
                    loop.print_progress(elapsed)
                stop.wait(0.2)
        finally:
            loop.stop_serving()
        if embedded_redis:
            # The embedded Redis, and with it the pending joins, ends with us: close every window now.
            _drain_joiner(loop.joiner)
        live_check = loop.close_workers()
        _report(settings, loop, live_check, signalled=stop.is_set(), report_json=report_json, export_logs=export_logs)
    return 0


@dataclass
class _Loop:
    """The processes `up` runs in one: serving, the stream processor, the joiner, the learner (when
    something learns online), the live propensity check, and the demo's traffic."""

    serving: Serving
    processor: StreamProcessor
    joiner: RewardJoiner
    learner: LinearLearner | None
    watch: PropensityWatch
    workers: Workers = field(default_factory=Workers)
    demo_workers: Workers = field(default_factory=Workers)
    demo_traffic: DemoTraffic | None = None
    events_publisher: BackgroundPublisher | None = None

    @classmethod
    def build(cls, settings: Settings) -> _Loop:
        learning = settings.strategy in LINEAR or settings.sticker_rerank != "static"
        loop = cls(
            serving=build_serving(settings),
            processor=build_stream_processor(settings),
            joiner=build_joiner(settings),
            learner=build_learner(settings) if learning else None,
            # the propensity self-check follows the decisions as they are logged (its gauges on /metrics)
            watch=build_propensity_watch(settings, interval_s=LIVE_CHECK_INTERVAL_S),
        )
        if settings.metrics_port:
            serve_metrics(loop.serving, settings.metrics_port, loop.workers, settings.metrics_host, extra=(loop.watch,))
            log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
        return loop

    def start(self, settings: Settings, demo: bool) -> None:
        self.serving.server.start()
        self.workers.start("stream-processor", self.processor.run)
        self.workers.start("reward-joiner", self.joiner.run)
        if self.learner is not None:
            self.workers.start("linear-learner", self.learner.run)
        self.workers.start("propensity-check", self.watch.run)
        print(
            f"tastemaker serving gRPC on {settings.grpc_host}:{self.serving.server.port}", file=sys.stderr, flush=True
        )
        if demo:
            self._start_demo(settings)

    def _start_demo(self, settings: Settings) -> None:
        self.events_publisher = BackgroundPublisher(producer_for(settings, "tastemaker-demo"))
        chat = None
        if self.serving.stickers is not None:
            chat = ChatWorld(list(self.serving.stickers.catalog.values()))
        else:
            log.warning(
                "no sticker model (TASTEMAKER_STICKER_MODEL or a registry's stickers version): "
                "the demo simulates the home page only; `make run` trains one on its first run"
            )
        self.demo_traffic = DemoTraffic(
            f"127.0.0.1:{self.serving.server.port}",
            SimulatedWorld(),
            self.events_publisher,
            Topics(settings.topic_prefix).events,
            chat=chat,
        )
        self.demo_workers.start("demo-traffic", self.demo_traffic.run)

    def print_progress(self, elapsed: float) -> None:
        """The demo's progress line (nothing without the demo)."""
        if self.demo_traffic is None:
            return
        s = self.demo_traffic.stats
        stickers = (
            f"stickers {s.sticker_requests} sent {s.sticker_sends}  " if self.serving.stickers is not None else ""
        )
        restarts = sum(self.workers.restarts.values())
        print(
            f"[{elapsed:5.0f}s] decisions {self.serving.home.decisions_served}  clicks {s.clicks}  {stickers}"
            f"events→features {self.processor.stats.applied}  rewarded {self.joiner.stats.rewarded} "
            f"(joined outcomes {self.joiner.stats.outcomes_joined})  errors {s.errors}"
            + (f"  worker restarts {restarts}" if restarts else ""),
            file=sys.stderr,
            flush=True,
        )

    def stop_serving(self) -> None:
        self.demo_workers.stop()
        if self.events_publisher is not None:
            self.events_publisher.close()
        self.serving.stop()
        self.workers.stop(timeout_s=5.0)

    def close_workers(self) -> PropensityCheck:
        """Close the workers; the live check's last word, on the decisions logged since its last
        poll (a bounded catch-up: a signal's grace is short)."""
        for _ in range(LIVE_CHECK_CATCH_UP_POLLS):
            if not self.watch.consume_once(timeout_s=1.0):
                break
        live_check = self.watch.check_now()
        self.watch.close()
        self.processor.close()
        self.joiner.close()
        if self.learner is not None:
            self.learner.close()
        return live_check


def _report(
    settings: Settings,
    loop: _Loop,
    live_check: PropensityCheck,
    signalled: bool,
    report_json: Path | None,
    export_logs: Path | None,
) -> None:
    """The closing report on stderr (and `--report-json`), from the rewarded topic (and its export)."""
    rewarded = read_topic(settings.kafka_bootstrap, Topics(settings.topic_prefix).rewarded, kafka_security_of(settings))
    if export_logs is not None:
        count = write_export(rewarded, export_logs)
        log.info("exported %d rewarded decisions to %s", count, export_logs)
    # stopped by a signal, the report must fit in the shutdown grace: the latest decisions only
    evaluated = rewarded[-SIGNAL_REPORT_DECISIONS:] if signalled else rewarded
    if len(evaluated) < len(rewarded):
        log.warning(
            "stopped by a signal: the report evaluates the latest %d of %d rewarded decisions "
            "(--export-logs FILE, then `tastemaker evaluate --logs FILE`, evaluates them all)",
            len(evaluated),
            len(rewarded),
        )
    serving, watch, learner = loop.serving, loop.watch, loop.learner
    summary = _summary(
        rewarded, serving.home.decisions_served, serving.feedback.outcomes_reported, loop.joiner, evaluated
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
