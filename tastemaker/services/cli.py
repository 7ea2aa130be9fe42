"""The `tastemaker` command line. Entry points only parse input and call the wiring."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from tastemaker.services.config import ConfigError, Settings

log = logging.getLogger("tastemaker")

EPILOG = """environment:
  TASTEMAKER_KAFKA_BOOTSTRAP   Kafka bootstrap servers (host:port). Unset: `up` starts an embedded broker.
  TASTEMAKER_REDIS_URL         Redis URL (redis://host:port/db). Unset: `up` starts an embedded Redis.
  TASTEMAKER_TOPIC_PREFIX      topic prefix (default tastemaker → tastemaker.events, .decisions, ...)
  TASTEMAKER_STRATEGY          home exploration: epsilon-greedy (default), softmax, linucb, thompson
  TASTEMAKER_EPSILON           ε of epsilon-greedy (default 0.1); TASTEMAKER_TEMPERATURE (softmax, 1.0),
                               TASTEMAKER_UCB_ALPHA (linucb, 1.0), TASTEMAKER_THOMPSON_SCALE (1.0)
  TASTEMAKER_PROPENSITY_FLOOR  least probability of any candidate at any position (default 0; max 0.1)
  TASTEMAKER_REWARD_MODEL      reward model artifact directory (`train reward-model`); unset: engagement-linear
  TASTEMAKER_MODEL_REGISTRY    registry directory: serving follows its current version (`models promote`)
  TASTEMAKER_STICKER_MODEL     sticker bundle (`stickers train --out`) for SuggestStickers
  TASTEMAKER_SHADOW_MODEL      a candidate artifact run beside the live model, logged never shown;
                               TASTEMAKER_SHADOW_MODE=apprentice lets it take over once it agrees often enough
  TASTEMAKER_REWARD_WINDOW_S   seconds an outcome may follow its decision (default 30)
  TASTEMAKER_GRPC_HOST         address the gRPC server binds (default 127.0.0.1; 0.0.0.0 for every interface)
  TASTEMAKER_GRPC_PORT         gRPC port (default 50051); TASTEMAKER_LOG_LEVEL (default INFO)
  TASTEMAKER_KAFKA_CLIENT      kafka-python (default) or confluent (librdkafka; faster)
  TASTEMAKER_REWARD_MIN/_MAX   valid range of one reported reward (default -1000, 1000); others are refused
  TASTEMAKER_FEATURE_TIMEOUT_S budget of one feature read on the request path (default 0.05); after
                               TASTEMAKER_FEATURE_BREAKER_FAILURES (3) failures in a row ranking skips
                               Redis and probes it every TASTEMAKER_FEATURE_BREAKER_PROBE_S (1.0)
  TASTEMAKER_SHUTDOWN_GRACE_S  `up` exits at most this long after SIGTERM/SIGINT (default 15)
  TASTEMAKER_METRICS_PORT      Prometheus metrics of `up`/`serve` on this port (default 0: off)
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


def cmd_up(args: argparse.Namespace) -> int:
    from tastemaker.services.up import run_up

    if args.duration is not None and args.duration <= 0:
        raise UsageError(f"--duration must be positive, got {args.duration}")
    if args.export_logs is not None and args.export_logs.suffix not in (".jsonl", ".parquet"):
        raise UsageError(f"--export-logs {args.export_logs}: name a .jsonl or a .parquet file")
    return run_up(
        _settings(args),
        demo=args.demo,
        duration_s=args.duration,
        report_json=args.report_json,
        export_logs=args.export_logs,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from tastemaker.services.bootstrap import build_serving, prepare_topics
    from tastemaker.services.up import install_stop_signals

    settings = _settings(args)
    _require_infra(settings)
    prepare_topics(settings)
    serving = build_serving(settings)
    stop = threading.Event()
    install_stop_signals(stop, settings.shutdown_grace_s)
    if settings.metrics_port:
        from tastemaker.services.metrics import serve_metrics

        serve_metrics(serving, settings.metrics_port)
    serving.server.start()
    stop.wait()
    serving.stop()
    return 0


def _run_worker(args: argparse.Namespace, build: Callable[[Settings], object]) -> int:
    from tastemaker.services.bootstrap import prepare_topics

    settings = _settings(args)
    _require_infra(settings)
    prepare_topics(settings)
    worker = build(settings)
    stop = _wait_for_signal()
    worker.run(stop)  # type: ignore[attr-defined]
    return 0


def cmd_features_run(args: argparse.Namespace) -> int:
    from tastemaker.services.bootstrap import build_stream_processor

    if args.processes < 1:
        raise UsageError(f"--processes must be at least 1, got {args.processes}")
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536 - args.processes:
        raise UsageError(f"--metrics-port must be a free port number, got {args.metrics_port}")
    if args.processes == 1:
        if args.metrics_port is None:
            return _run_worker(args, build_stream_processor)
        from tastemaker.features.metrics import ProcessorMetrics

        metrics = ProcessorMetrics()
        metrics.serve(args.metrics_port)
        log.info("metrics on http://127.0.0.1:%d/metrics", args.metrics_port)
        return _run_worker(args, lambda settings: build_stream_processor(settings, on_status=metrics.update))
    from tastemaker.services.bootstrap import prepare_topics
    from tastemaker.services.supervisor import supervise

    settings = _settings(args)
    _require_infra(settings)
    prepare_topics(settings)
    command = [sys.executable, "-m", "tastemaker.services.cli", "features", "run", "--processes", "1"]
    commands = [
        command + ([] if args.metrics_port is None else ["--metrics-port", str(args.metrics_port + i)])
        for i in range(args.processes)
    ]
    return supervise(commands, _wait_for_signal())


def cmd_features_get(args: argparse.Namespace) -> int:
    import redis

    from tastemaker.features.store import FeatureStore

    settings = _settings(args)
    if not settings.redis_url:
        raise UsageError("set TASTEMAKER_REDIS_URL to the Redis holding the features")
    store = FeatureStore(redis.Redis.from_url(settings.redis_url), namespace=settings.redis_namespace)
    print(json.dumps(store.read(args.user).as_json(), indent=2, sort_keys=True))
    return 0


def cmd_features_status(args: argparse.Namespace) -> int:
    import redis

    from tastemaker.features.status import group_lag, processor_statuses
    from tastemaker.messaging.ports import Topics
    from tastemaker.services.bootstrap import consumer_group

    settings = _settings(args)
    _require_infra(settings)
    processors = processor_statuses(redis.Redis.from_url(settings.redis_url), settings.redis_namespace)
    lag = group_lag(
        settings.kafka_bootstrap, consumer_group(settings, "features"), Topics(settings.topic_prefix).events
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


def cmd_joiner_run(args: argparse.Namespace) -> int:
    from tastemaker.services.bootstrap import build_joiner

    return _run_worker(args, build_joiner)


def cmd_train_reward_model(args: argparse.Namespace) -> int:
    if args.epochs <= 0:
        raise UsageError(f"--epochs must be positive, got {args.epochs}")
    rewarded = _load_rewarded(args)
    from tastemaker.training.reward_training import train_reward_model

    try:
        clip = args.ips_clip if args.ips_clip is not None else (10.0 if args.targets == "dr" else 0.0)
        trained = train_reward_model(
            args.kind, rewarded, args.out, version=args.version, epochs=args.epochs, ips_clip=clip or None,
            targets=args.targets,
        )  # fmt: skip
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in trained.metrics.items())
    print(f"wrote {args.kind} reward model {trained.version} to {trained.directory} ({metrics})")
    print(f"serve it with TASTEMAKER_REWARD_MODEL={trained.directory}")
    return 0


def _registry(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from tastemaker.training.registry import Registry

    root = args.registry or _settings(args).model_registry
    if not root:
        raise UsageError("give --registry DIR or set TASTEMAKER_MODEL_REGISTRY")
    return Registry(Path(root))


def cmd_models_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    entries = registry.versions()
    if not entries:
        print(f"no models in {registry.home}")
        return 0
    print(f"{'':2}{'version':<28}{'kind':<10}{'registered':<22}{'gate':<10}{'held-out AUC':>13}")
    for entry in entries:
        m = entry.manifest
        gate = (m.get("gate") or {}).get("decision", "-")
        auc = (m.get("metrics") or {}).get("heldout_auc")
        auc_text = "-" if auc is None else f"{auc:.3f}"
        print(f"{'*' if entry.current else ' ':2}{entry.version:<28}{m.get('kind', '?'):<10}"
              f"{str(m.get('registered_at', '-')):<22}{gate:<10}{auc_text:>13}")  # fmt: skip
    return 0


def cmd_models_register(args: argparse.Namespace) -> int:
    from tastemaker.training.registry import RegistryError

    registry = _registry(args)
    try:
        version = registry.register(args.artifact, {"registered_at": _now()})
    except RegistryError as exc:
        raise UsageError(str(exc)) from exc
    print(f"registered {version} in {registry.home}")
    return 0


def cmd_models_promote(args: argparse.Namespace) -> int:
    from tastemaker.bandits.reward_models import ArtifactError
    from tastemaker.training.registry import RegistryError

    registry = _registry(args)
    try:
        registry.promote(args.version)
    except (RegistryError, ArtifactError) as exc:
        raise UsageError(str(exc)) from exc
    print(f"{args.version} is current; serving processes follow within their refresh interval")
    return 0


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from tastemaker.training.registry import RegistryError

    registry = _registry(args)
    try:
        version = registry.rollback()
    except RegistryError as exc:
        raise UsageError(str(exc)) from exc
    print(f"rolled back: {version} is current")
    return 0


#: exit code of a retrain stopped by log validation (the report is on stderr)
EXIT_VALIDATION = 3


def cmd_retrain(args: argparse.Namespace) -> int:
    from tastemaker.training.retrain import retrain
    from tastemaker.training.validation import ValidationFailed

    registry = _registry(args)
    rewarded = _load_rewarded(args)
    try:
        summary = retrain(
            rewarded, registry, kind=args.kind, holdout_share=args.holdout_share, epochs=args.epochs,
            ips_clip=args.ips_clip or None, promote=not args.no_promote, targets=args.targets,
        )  # fmt: skip
    except ValidationFailed as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_VALIDATION
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print("\n".join(summary.lines()))
    return 0


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def cmd_stickers_import_cldr(args: argparse.Namespace) -> int:
    from tastemaker.stickers.catalog import CatalogError, import_cldr, write_catalog

    try:
        count = write_catalog(import_cldr(args.cldr), args.out)
    except CatalogError as exc:
        raise UsageError(str(exc)) from exc
    print(f"wrote {count} stickers to {args.out}")
    return 0


def cmd_stickers_train(args: argparse.Namespace) -> int:
    from tastemaker.stickers.bundle import save_bundle
    from tastemaker.stickers.catalog import CatalogError, read_catalog
    from tastemaker.training.sticker_training import train_encoder

    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--dim", args.dim)):
        if value <= 0:
            raise UsageError(f"{flag} must be positive, got {value}")
    try:
        stickers = read_catalog(args.catalog)
    except CatalogError as exc:
        raise UsageError(str(exc)) from exc
    logged = []
    if args.logs is not None:
        from tastemaker.training.sticker_logs import logged_pairs

        try:
            logged = logged_pairs(_load_rewarded(args), clip=args.ips_clip or None)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        if not logged:
            raise UsageError(f"{args.logs} holds no sticker sent after a SuggestStickers decision")
    trained = train_encoder(
        stickers, version=args.version, epochs=args.epochs, logged=logged, hold_out_names=args.hold_out_names,
        batch_size=args.batch_size, dim=args.dim,
    )  # fmt: skip
    index = save_bundle(args.out, trained.encoder, stickers, args.catalog)
    print(f"trained {trained.encoder.version} on {trained.pairs:,} pairs ({trained.logged_pairs:,} from the logs) "
          f"in {trained.seconds:.0f} s; "
          f"indexed {len(index)} stickers ({index.backend}) → {args.out}")  # fmt: skip
    print(f"serve it with TASTEMAKER_STICKER_MODEL={args.out}")
    return 0


def cmd_stickers_suggest(args: argparse.Namespace) -> int:
    from tastemaker.services.errors import InvalidArgument
    from tastemaker.services.stickers import StickerService
    from tastemaker.stickers.bundle import load_bundle
    from tastemaker.stickers.encoder import EncoderError

    try:
        args.text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("the message is not valid UTF-8") from None
    model = args.model or _settings(args).sticker_model
    if not model:
        raise UsageError("give --model DIR or set TASTEMAKER_STICKER_MODEL (`tastemaker stickers train --out DIR`)")
    try:
        bundle = load_bundle(Path(model))
    except (EncoderError, ValueError, OSError) as exc:
        raise UsageError(f"--model {model}: {exc}") from exc
    service = StickerService(bundle.encoder, bundle.index, rng=__import__("numpy").random.default_rng(args.seed))
    try:
        result = service.suggest("cli", args.text, args.lang or "", args.k)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from exc
    for s in result.suggestions:
        sticker = bundle.catalog.get(s.sticker_id)
        name = sticker.phrases.get(args.lang or "en", sticker.phrases.get("en")) if sticker else None
        emoji = sticker.emoji if sticker else "?"
        print(f"{emoji}  {s.sticker_id:<24} {s.score:6.3f}  p={s.propensity:.3f}  {name.name if name else ''}")
    return 0


def cmd_learner_run(args: argparse.Namespace) -> int:
    from tastemaker.services.bootstrap import build_learner

    return _run_worker(args, build_learner)


def _load_rewarded(args: argparse.Namespace) -> list:
    from tastemaker.messaging.ports import Topics
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
    return read_topic(settings.kafka_bootstrap, Topics(settings.topic_prefix).rewarded)


def _estimators(args: argparse.Namespace, default: str) -> list:
    from tastemaker.training.ope import estimator_by_name

    try:
        return [estimator_by_name(name.strip()) for name in (args.estimators or default).split(",") if name.strip()]
    except ValueError as exc:
        raise UsageError(f"--estimators: {exc}") from exc


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tastemaker.training.evaluate import POLICIES, evaluate, format_report

    if args.bootstrap < 0:
        raise UsageError(f"--bootstrap must be 0 or a number of resamples, got {args.bootstrap}")
    if args.format is None:
        args.format = "rewarded"
    if args.format == "parquet" and args.logs is not None and args.logs.is_file():
        from tastemaker.training.logs import is_rewarded_parquet

        if is_rewarded_parquet(args.logs):
            args.format = "rewarded"  # `tastemaker logs export --out X.parquet`
    if args.format in ("obd", "csv", "parquet"):
        from tastemaker.training.action_eval import evaluate_action_log
        from tastemaker.training.action_policies import PolicyError
        from tastemaker.training.log_readers import read_action_log
        from tastemaker.training.logs import LogFormatError

        policies = args.policy or ["uniform-random"]
        estimators = _estimators(args, "ipw,snipw,dm,dr,sndr,switch-dr,dr-os")
        if args.logs is None:
            raise UsageError(f"--format {args.format} needs --logs FILE")
        if args.engine == "beam":
            from tastemaker.training.beam_action_ope import evaluate_action_log_with_beam

            if args.bootstrap:
                raise UsageError("--engine beam gives analytic intervals; --bootstrap is for --engine memory")
            try:
                report = evaluate_action_log_with_beam(
                    str(args.logs), args.format, policies, [e.name for e in estimators],
                    pipeline_args=args.beam_args, output_prefix=args.beam_output,
                )  # fmt: skip
            except (LogFormatError, PolicyError, ValueError) as exc:
                raise UsageError(str(exc)) from exc
            return _write_outputs(report, args, text=json.dumps(report, indent=2))
        try:
            log = read_action_log(args.logs, args.format)
            report = evaluate_action_log(log, policies, estimators, args.format, bootstrap=args.bootstrap)
        except (LogFormatError, PolicyError) as exc:
            raise UsageError(str(exc)) from exc
    else:
        from tastemaker.training.action_policies import PolicyError
        from tastemaker.training.home_policies import resolve

        policies = args.policy or list(POLICIES)
        for name in policies:
            try:
                resolve(name)
            except PolicyError as exc:
                raise UsageError(f"--policy: {exc}") from exc
        estimators = _estimators(args, "ipw,snipw")
        if args.engine == "beam":
            if args.logs is None:
                raise UsageError("--engine beam reads files: give --logs 'PATH-or-GLOB' (`tastemaker logs export`)")
            unsupported = [e.name for e in estimators if e.name not in ("ipw", "snipw") and not e.needs_reward_model]
            if unsupported:
                raise UsageError(f"--engine beam does not compute {','.join(unsupported)}")
            if args.bootstrap:
                raise UsageError("--engine beam gives analytic intervals; --bootstrap is for --engine memory")
            from tastemaker.training.beam_ope import evaluate_with_beam

            report = evaluate_with_beam(
                str(args.logs),
                policies,
                pipeline_args=args.beam_args,
                output_prefix=args.beam_output,
                model_based=any(e.needs_reward_model for e in estimators),
            )
            return _write_outputs(report, args, text=json.dumps(report, indent=2))
        rewarded = _load_rewarded(args)
        if not rewarded:
            raise UsageError("no rewarded decisions found to evaluate")
        try:
            report = evaluate(rewarded, policies, estimators, bootstrap=args.bootstrap)
        except PolicyError as exc:
            raise UsageError(f"--policy: {exc}") from exc
    return _write_outputs(report, args, text=format_report(report))


def _write_outputs(report: dict, args: argparse.Namespace, text: str) -> int:
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    if args.report is not None:
        from tastemaker.training.report import write_report

        page, twin = write_report(report, args.report)
        print(f"wrote {page} and {twin}")
    return 0


def cmd_logs_export(args: argparse.Namespace) -> int:
    from tastemaker.training.logs import write_export

    if args.out.suffix not in (".jsonl", ".parquet"):
        raise UsageError(f"--out {args.out}: name a .jsonl or a .parquet file")
    args.logs = None
    count = write_export(_load_rewarded(args), args.out)
    print(f"exported {count} rewarded decisions to {args.out}")
    return 0


def cmd_events_produce(args: argparse.Namespace) -> int:
    from tastemaker.messaging import make_producer
    from tastemaker.messaging.codec import JSON_HEADERS
    from tastemaker.messaging.ports import Topics

    settings = _settings(args)
    if not settings.kafka_bootstrap:
        raise UsageError("set TASTEMAKER_KAFKA_BOOTSTRAP to the broker to produce to")
    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")
    producer = make_producer(settings.kafka_client, settings.kafka_bootstrap, client_id="tastemaker-cli")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tastemaker",
        description="Tastemaker: real-time home-shelf ranking with contextual bandits, propensity logs "
        "and off-policy evaluation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="run everything (embedded broker and Redis unless configured)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--demo", action="store_true", help="drive simulated users and print a progress line")
    up.add_argument("--port", type=int, help="gRPC port (default 50051; 0 picks a free one)")
    up.add_argument("--duration", type=float, metavar="SECONDS", help="stop cleanly after this long")
    up.add_argument("--report-json", type=Path, metavar="PATH", help="write a summary and the estimates here")
    up.add_argument(
        "--export-logs",
        type=Path,
        metavar="FILE",
        help="on exit, write the rewarded decisions to FILE (.jsonl or .parquet) for `tastemaker evaluate`",
    )
    up.add_argument("--epsilon", type=float, help="exploration rate (default 0.1)")
    up.add_argument(
        "--strategy",
        choices=("epsilon-greedy", "softmax", "linucb", "thompson"),
        help="home exploration strategy (default epsilon-greedy; TASTEMAKER_STRATEGY)",
    )
    up.add_argument("--reward-window-s", type=float, help="reward window in seconds (default 30)")
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="run only the gRPC server against configured Kafka and Redis")
    serve.add_argument("--port", type=int, help="gRPC port (default 50051)")
    serve.add_argument("--epsilon", type=float, help="exploration rate (default 0.1)")
    serve.add_argument(
        "--strategy",
        choices=("epsilon-greedy", "softmax", "linucb", "thompson"),
        help="home exploration strategy (default epsilon-greedy; TASTEMAKER_STRATEGY)",
    )
    serve.set_defaults(func=cmd_serve)

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
        "--metrics-port", type=int, help="serve Prometheus metrics here (process i of N on PORT+i); default off"
    )
    features_run.set_defaults(func=cmd_features_run)
    features_get = features_sub.add_parser("get", help="print one user's features as JSON")
    features_get.add_argument("--user", required=True, help="user id")
    features_get.set_defaults(func=cmd_features_get)
    features_status = features_sub.add_parser("status", help="consumer lag and events/s of the processors")
    features_status.add_argument("--json", action="store_true", help="print JSON")
    features_status.set_defaults(func=cmd_features_status)

    joiner = sub.add_parser("joiner", help="the decisions ⨝ outcomes reward joiner")
    joiner_sub = joiner.add_subparsers(dest="joiner_command", required=True, metavar="ACTION")
    joiner_sub.add_parser("run", help="join outcomes to decisions → tastemaker.rewarded").set_defaults(
        func=cmd_joiner_run
    )

    train = sub.add_parser("train", help="train models from rewarded decisions")
    train_sub = train.add_subparsers(dest="train_command", required=True, metavar="WHAT")
    reward_model = train_sub.add_parser(
        "reward-model",
        help="the home reward model: logistic or dnn (TensorFlow, served in numpy) or gbt (YDF)",
    )
    reward_model.add_argument(
        "--kind",
        choices=("logistic", "dnn", "gbt", "banditnet"),
        required=True,
        help="banditnet: the policy learned directly (self-normalised IPS with the Lagrangian trick)",
    )
    reward_model.add_argument(
        "--logs", type=Path, help="rewarded decisions (.jsonl or .parquet export); default: the topic"
    )
    reward_model.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    reward_model.add_argument("--epochs", type=int, default=5, help="TensorFlow training epochs (default 5)")
    reward_model.add_argument("--version", help="version name (default KIND-TIMESTAMP)")
    reward_model.add_argument(
        "--targets", choices=("ips", "dr"), default="ips",
        help="ips: the logged clicks (weighted by --ips-clip); dr: doubly robust pseudo-outcomes over shown "
        "and sampled unshown candidates (default ips)",
    )  # fmt: skip
    reward_model.add_argument(
        "--ips-clip", type=float,
        help="clip of 1/propensity (0: unweighted; default: unweighted for ips, 10 for dr)",
    )  # fmt: skip
    reward_model.set_defaults(func=cmd_train_reward_model)

    models = sub.add_parser("models", help="the model registry: list, register, promote, rollback")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for name, func, text in (
        ("list", cmd_models_list, "versions, the current one starred, with gate decisions"),
        ("register", cmd_models_register, "copy an artifact directory into the registry"),
        ("promote", cmd_models_promote, "make VERSION current (serving follows within seconds)"),
        ("rollback", cmd_models_rollback, "make the previously current version current again"),
    ):
        action = models_sub.add_parser(name, help=text)
        action.add_argument("--registry", help="registry directory (default TASTEMAKER_MODEL_REGISTRY)")
        if name == "register":
            action.add_argument("artifact", type=Path, help="an artifact directory (`train reward-model --out`)")
        if name == "promote":
            action.add_argument("version")
        action.set_defaults(func=func)

    retrain_parser = sub.add_parser(
        "retrain",
        help="validate logs, train a reward model, gate it by OPE on later logs, promote with confidence",
        description="Exit codes: 0 done (promoted or refused by the gate), 2 bad input, 3 stopped by log "
        "validation (the report is on stderr). Re-running on the same logs repeats the same decision.",
    )
    retrain_parser.add_argument("--registry", help="registry directory (default TASTEMAKER_MODEL_REGISTRY)")
    retrain_parser.add_argument("--logs", type=Path, help="rewarded decisions (.jsonl/.parquet); default: the topic")
    retrain_parser.add_argument("--kind", choices=("logistic", "dnn", "gbt", "banditnet"), default="gbt")
    retrain_parser.add_argument("--holdout-share", type=float, default=0.3, help="later share held out for the gate")
    retrain_parser.add_argument("--epochs", type=int, default=5)
    retrain_parser.add_argument("--ips-clip", type=float, default=10.0, help="importance-weight clip (0: unweighted)")
    retrain_parser.add_argument(
        "--targets", choices=("ips", "dr"), default="ips",
        help="training targets: IPS-weighted clicks or doubly robust pseudo-outcomes (default ips)",
    )  # fmt: skip
    retrain_parser.add_argument("--no-promote", action="store_true", help="register and gate, but do not promote")
    retrain_parser.set_defaults(func=cmd_retrain)

    stickers = sub.add_parser("stickers", help="message-to-sticker retrieval: catalog, training, suggestions")
    stickers_sub = stickers.add_subparsers(dest="stickers_command", required=True, metavar="ACTION")
    importer = stickers_sub.add_parser("import-cldr", help="build the catalog from CLDR emoji annotations")
    importer.add_argument("--cldr", type=Path, required=True, help="the cldr-annotations-full package directory")
    importer.add_argument("--out", type=Path, required=True, help="catalog file to write (.jsonl)")
    importer.set_defaults(func=cmd_stickers_import_cldr)
    st_train = stickers_sub.add_parser("train", help="train the two-tower encoder (TFRS) and index the catalog")
    st_train.add_argument("--catalog", type=Path, required=True, help="catalog .jsonl (`stickers import-cldr`)")
    st_train.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    st_train.add_argument("--epochs", type=int, default=12, help="passes over the training pairs (default 12)")
    st_train.add_argument(
        "--batch-size", type=int, default=2048,
        help="pairs per step (default 2048); each step also scores the whole catalog, so larger batches train faster",
    )  # fmt: skip
    st_train.add_argument("--dim", type=int, default=128, help="embedding dimension (default 128)")
    st_train.add_argument("--version", help="version name (default stickers-TIMESTAMP)")
    st_train.add_argument(
        "--hold-out-names", action="store_true",
        help="keep the CLDR short names out of training entirely (for `bench_stickers --model`)",
    )  # fmt: skip
    st_train.add_argument(
        "--logs", type=Path,
        help="rewarded decisions (.jsonl/.parquet export): also learn from (message, sent sticker) pairs",
    )  # fmt: skip
    st_train.add_argument(
        "--ips-clip", type=float, default=10.0, help="clip of a logged pair's 1/propensity weight (0: unweighted)"
    )
    st_train.set_defaults(func=cmd_stickers_train)
    st_suggest = stickers_sub.add_parser("suggest", help="stickers for a message, as SuggestStickers answers")
    st_suggest.add_argument("text", help="the message")
    st_suggest.add_argument("--lang", choices=("en", "hi", "bn", "ta", "te", "mr", "gu", "kn", "ml", "pa"))
    st_suggest.add_argument("-k", type=int, default=5, help="how many (default 5)")
    st_suggest.add_argument("--model", help="bundle directory (default TASTEMAKER_STICKER_MODEL)")
    st_suggest.add_argument("--seed", type=int, help="exploration seed, for repeatable output")
    st_suggest.set_defaults(func=cmd_stickers_suggest)

    learner = sub.add_parser("learner", help="online learning of the linear strategies (LinUCB, Thompson)")
    learner_sub = learner.add_subparsers(dest="learner_command", required=True, metavar="ACTION")
    learner_sub.add_parser("run", help="tastemaker.rewarded → the shared posterior in Redis").set_defaults(
        func=cmd_learner_run
    )

    ev = sub.add_parser("evaluate", help="off-policy estimates (IPW, SNIPW, DM, DR, ...) with 95%% intervals")
    ev.add_argument(
        "--logs",
        type=Path,
        help="the log to evaluate; default: read tastemaker.rewarded from TASTEMAKER_KAFKA_BOOTSTRAP",
    )
    ev.add_argument(
        "--format",
        choices=("rewarded", "parquet", "csv", "obd"),
        default=None,
        help="rewarded: `tastemaker logs export` output, .jsonl or .parquet (the default); parquet/csv: the "
        "generic layout of docs/offline-evaluation.md (a .parquet export of rewarded decisions is recognised); "
        "obd: one Open Bandit Dataset CSV as shipped, item_context.csv beside it",
    )
    ev.add_argument(
        "--engine",
        choices=("memory", "beam"),
        default="memory",
        help="memory: vectorised numpy (default); beam: an Apache Beam pipeline giving the same estimates "
        "(obd/csv/parquet: for uniform-random, greedy, softmax[:T] only)",
    )
    ev.add_argument(
        "--beam-arg",
        dest="beam_args",
        action="append",
        default=[],
        metavar="OPTION",
        help="a Beam pipeline option, repeatable, e.g. --beam-arg=--runner=FlinkRunner (default DirectRunner)",
    )
    ev.add_argument(
        "--beam-output",
        metavar="PREFIX",
        help="where the pipeline writes its sums (default a local temp dir; on a cluster a shared path, e.g. gs://…)",
    )
    ev.add_argument(
        "--estimators",
        help="comma-separated: ipw, snipw, dm, dr, sndr, switch-dr, dr-os "
        "(default: ipw,snipw for rewarded logs, where each also runs as slate- and cascade-; all for the others)",
    )
    ev.add_argument(
        "--policy",
        action="append",
        metavar="NAME_OR_ENTRY_POINT",
        help="repeatable. Rewarded logs: logging, greedy, uniform-random (the default three), epsilon:E, "
        "softmax[:T], model:SAVED.json, or MODULE:ATTR / FILE.py:ATTR giving a ranker. Other formats: "
        "uniform-random (default), greedy, softmax[:T] over the cross-fitted reward model, empirical:OTHER_LOG, "
        "or MODULE:FUNCTION / FILE.py:FUNCTION returning π(a|row) as an (n_rows, n_actions) array",
    )
    ev.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="percentile-bootstrap intervals from N resamples instead of the analytic (normal) ones",
    )
    ev.add_argument("--json", type=Path, metavar="OUT", help="also write the report as JSON")
    ev.add_argument(
        "--report", type=Path, metavar="OUT.html", help="write a self-contained HTML report with plots, and OUT.json"
    )
    ev.set_defaults(func=cmd_evaluate)

    logs = sub.add_parser("logs", help="log export")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    export = logs_sub.add_parser("export", help="tastemaker.rewarded → JSON lines or Parquet")
    export.add_argument(
        "--out", type=Path, required=True, help="output file: .jsonl (protobuf JSON per line) or .parquet"
    )
    export.set_defaults(func=cmd_logs_export)

    events = sub.add_parser("events", help="event tools")
    events_sub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    produce = events_sub.add_parser("produce", help="publish one UserEvent per line (protobuf JSON mapping)")
    produce.add_argument("file", type=Path, metavar="FILE.jsonl")
    produce.set_defaults(func=cmd_events_produce)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        level = Settings.from_env().log_level
    except ConfigError as exc:
        print(f"tastemaker: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except (UsageError, ConfigError) as exc:
        print(f"tastemaker: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the environment, not the input: a port in use, a broker unreachable, ...
        log.error("%s", exc)
        print(f"tastemaker: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
