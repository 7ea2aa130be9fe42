"""`tastemaker` commands: running everything (`up`) or the server alone (`serve`)."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from tastemaker.cli.common import (
    EPILOG,
    UsageError,
    require_infra,
    settings_of,
    wait_for_signal,
)
from tastemaker.services.config import STRATEGIES, Settings


def cmd_up(args: argparse.Namespace) -> int:
    from tastemaker.cli.up import run_up

    if args.duration is not None and args.duration <= 0:
        raise UsageError(f"--duration must be positive, got {args.duration}")
    if args.export_logs is not None and args.export_logs.suffix not in (".jsonl", ".parquet"):
        raise UsageError(f"--export-logs {args.export_logs}: name a .jsonl or a .parquet file")
    settings = settings_of(args)
    if args.demo and "TASTEMAKER_STICKER_RERANK" not in os.environ:
        # the demo compares the learned sticker re-rank with the static one, half the chat users each
        settings = settings.with_(sticker_rerank="side-by-side")
    return run_up(
        settings,
        demo=args.demo,
        duration_s=args.duration,
        report_json=args.report_json,
        export_logs=args.export_logs,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from tastemaker.cli.up import install_stop_signals
    from tastemaker.services.bootstrap import build_serving, prepare_topics

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    settings = settings_of(args)
    require_infra(settings)
    if args.workers > 1:
        return _serve_workers(args, settings)
    prepare_topics(settings)
    serving = build_serving(settings, reuse_port=args.reuse_port)
    stop = threading.Event()
    install_stop_signals(stop, settings.shutdown_grace_s)
    if settings.metrics_port:
        from tastemaker.services.metrics import serve_metrics

        serve_metrics(serving, settings.metrics_port, host=settings.metrics_host)
    if serving.server.security.certificates is not None:
        serving.server.security.certificates.reload_on_sighup()
    serving.server.start()
    stop.wait()
    serving.stop(grace_s=min(5.0, settings.shutdown_grace_s))
    return 0


def _serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    """N server processes on one port (SO_REUSEPORT: the kernel spreads connections over them),
    each with its own publisher and model watcher, restarted if one dies and stopped together on
    SIGTERM/SIGINT (each finishes its in-flight requests and flushes its decision logs). Worker i
    serves metrics on TASTEMAKER_METRICS_PORT + i."""
    import os
    import socket
    import sys

    from tastemaker.services.bootstrap import prepare_topics
    from tastemaker.services.supervisor import supervise

    if settings.grpc_port == 0:
        raise UsageError("--workers N needs a fixed --port (the workers share it)")
    if settings.metrics_port and settings.metrics_port + args.workers > 65536:
        raise UsageError(f"TASTEMAKER_METRICS_PORT + --workers must stay below 65536, got {settings.metrics_port}")
    # the port must be free now: sharing it with a stranger that happens to set SO_REUSEPORT is not serving
    probe = socket.socket(socket.AF_INET6 if ":" in settings.grpc_host else socket.AF_INET)
    try:
        probe.bind((settings.grpc_host, settings.grpc_port))
    except OSError as exc:
        raise OSError(
            exc.errno, f"could not bind the gRPC port {settings.grpc_host}:{settings.grpc_port} (in use?)"
        ) from exc
    finally:
        probe.close()
    prepare_topics(settings)
    base = [sys.executable, "-m", "tastemaker.cli", "serve", "--workers", "1", "--reuse-port"]
    if args.insecure:
        base.append("--insecure")
    base += ["--port", str(settings.grpc_port)]
    if args.epsilon is not None:
        base += ["--epsilon", str(args.epsilon)]
    if args.strategy is not None:
        base += ["--strategy", args.strategy]
    environments = []
    for i in range(args.workers):
        env = dict(os.environ)
        if settings.metrics_port:
            env["TASTEMAKER_METRICS_PORT"] = str(settings.metrics_port + i)
        spool = settings.spool_file()
        if spool is not None:  # one spool per worker: each sends only what it stored
            env["TASTEMAKER_SPOOL_PATH"] = f"{spool}.worker{i}"
        environments.append(env)
    return supervise([base] * args.workers, wait_for_signal(), environments=environments)


def cmd_health(args: argparse.Namespace) -> int:
    """Ask a server's gRPC health service; exit 0 only when it answers SERVING (a container
    HEALTHCHECK or a probe can run this)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    address = args.address or f"127.0.0.1:{settings_of(args).grpc_port}"
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            print(f"{address}: {exc.code().name}: {exc.details()}")  # type: ignore[attr-defined]
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def add_health(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    health = sub.add_parser(
        "health",
        help="check a server through the gRPC health service (exit 0: SERVING, 1: anything else)",
    )
    health.add_argument("--address", help="host:port of the server (default 127.0.0.1 and TASTEMAKER_GRPC_PORT, 50051)")
    health.add_argument(
        "--service", default="", help="service name to ask about, e.g. tastemaker.v1.HomeRanking (default: the server)"
    )
    health.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS", help="deadline (default 3)")
    health.set_defaults(func=cmd_health)


def _add_exploration(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epsilon", type=float, help="exploration rate (default 0.1)")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="home exploration strategy (default epsilon-greedy; TASTEMAKER_STRATEGY; squarecb's γ: "
        "TASTEMAKER_SQUARECB_GAMMA)",
    )


def add_up(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    _add_exploration(up)
    up.add_argument("--reward-window-s", type=float, help="reward window in seconds (default 30)")
    up.set_defaults(func=cmd_up)


def add_serve(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", help="run only the gRPC server against configured Kafka and Redis")
    serve.add_argument("--port", type=int, help="gRPC port (default 50051)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (default 1); each has its own publisher and model watcher",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set on each worker
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="listen beyond 127.0.0.1 without TLS and tokens (refused otherwise; TASTEMAKER_INSECURE=1)",
    )
    _add_exploration(serve)
    serve.set_defaults(func=cmd_serve)
