"""`tastemaker` commands: off-policy evaluation and log export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tastemaker.cli.common import (
    UsageError,
    load_rewarded,
    run_worker,
)
from tastemaker.training.evaluation.beam_runners import DEFAULT_DASK_WORKERS


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tastemaker.training.evaluation.job import EvaluationError, EvaluationJob, run

    job = EvaluationJob(
        format=args.format or "rewarded",
        engine=args.engine,
        logs=args.logs,
        policies=args.policy or (),
        estimators=(args.estimators or "").split(",") if args.estimators else (),
        bootstrap=args.bootstrap,
        beam_args=args.beam_args,
        beam_output=args.beam_output,
        runner=args.runner,
        dask_scheduler=args.dask_scheduler,
        dask_workers=args.dask_workers,
        estimate_propensities=args.estimate_propensities,
    )
    try:
        result = run(job, load_rewarded=lambda: load_rewarded(args))
    except EvaluationError as exc:
        raise UsageError(str(exc)) from exc
    return _write_outputs(result.report, args, text=result.text)


def _write_outputs(report: dict, args: argparse.Namespace, text: str) -> int:
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    if args.report is not None:
        from tastemaker.training.evaluation.report import write_report

        page, twin = write_report(report, args.report)
        print(f"wrote {page} and {twin}")
    return 0


def cmd_logs_export(args: argparse.Namespace) -> int:
    from tastemaker.records.log_files import write_export

    if args.out.suffix not in (".jsonl", ".parquet"):
        raise UsageError(f"--out {args.out}: name a .jsonl or a .parquet file")
    args.logs = None
    count = write_export(load_rewarded(args), args.out)
    print(f"exported {count} rewarded decisions to {args.out}")
    return 0


def add_evaluate(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ev = sub.add_parser(
        "evaluate",
        help="off-policy estimates (IPW, SNIPW, DM, DR, ...) with 95%% intervals",
        description="What would other policies have earned on these logs? Off-policy estimates with 95% "
        "intervals, each estimator's effective sample size and plain-word warnings, and per-row values; "
        "a target the logs do not support gets no estimate. Exit 2 on bad flags or an unreadable log.",
    )
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
        help="a Beam pipeline option, repeatable, e.g. --beam-arg=--runner=FlinkRunner to run elsewhere "
        "than --runner's two",
    )
    ev.add_argument(
        "--runner",
        choices=("fnapi", "dask"),
        default="fnapi",
        help="--engine beam: where the pipeline runs. fnapi: Beam's in-process runner (default); dask: Beam's "
        "DaskRunner on a dask.distributed cluster, the one at --dask-scheduler or a local one of --dask-workers "
        "processes started for the run",
    )
    ev.add_argument(
        "--dask-scheduler",
        metavar="ADDR",
        help="--runner dask: a running scheduler, e.g. tcp://10.0.0.5:8786 (its workers must read --logs and "
        "--beam-output at the same paths)",
    )
    ev.add_argument(
        "--dask-workers",
        type=int,
        default=DEFAULT_DASK_WORKERS,
        metavar="N",
        help=f"--runner dask without --dask-scheduler: worker processes of the local cluster (default "
        f"{DEFAULT_DASK_WORKERS})",
    )
    ev.add_argument(
        "--beam-output",
        metavar="PREFIX",
        help="where the pipeline writes its sums (default a local temp dir; on a cluster a shared path, e.g. gs://…)",
    )
    ev.add_argument(
        "--estimators",
        help="comma-separated: ipw, snipw, dm, dr, sndr, switch-dr, dr-os "
        "(default: ipw,snipw for rewarded logs, where each also runs as slate- and cascade-, and any model-based "
        "one adds cascade-dr; all for the others)",
    )
    ev.add_argument(
        "--policy",
        action="append",
        metavar="NAME_OR_ENTRY_POINT",
        help="repeatable. Rewarded logs: logging, greedy, uniform-random (the default three), epsilon:E, "
        "softmax[:T], squarecb[:GAMMA], model:SAVED.json, model:builtin, or MODULE:ATTR / FILE.py:ATTR giving a "
        "Strategy (bandits.strategies). "
        "Other formats: "
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
    ev.add_argument(
        "--estimate-propensities",
        action="store_true",
        help="action logs (obd, csv, parquet): fit the logging policy's propensities from the logged actions "
        "(per position, cross-fitted) instead of trusting the log's, and print the estimates with the log's own "
        "beside them when it has any",
    )
    ev.add_argument("--json", type=Path, metavar="OUT", help="also write the report as JSON")
    ev.add_argument(
        "--report", type=Path, metavar="OUT.html", help="write a self-contained HTML report with plots, and OUT.json"
    )
    ev.set_defaults(func=cmd_evaluate)


#: `check propensities` found logged propensities the logging policy does not produce
EXIT_CHECK_FAILED = 3


def cmd_check_propensities(args: argparse.Namespace) -> int:
    from tastemaker.training.lifecycle.propensity_check import ALPHA, check_propensities

    if args.alpha is not None and not 0 < args.alpha < 1:
        raise UsageError(f"--alpha must be in (0, 1), got {args.alpha}")
    if args.sample < 0 or args.show < 0:
        raise UsageError(f"--sample and --show take a count >= 0, got {args.sample} and {args.show}")
    if args.follow:
        return _follow_propensities(args)
    decisions = load_rewarded(args)
    if args.sample and len(decisions) > args.sample:  # the latest ones: what serving does now
        decisions = sorted(decisions, key=lambda d: d.decision.served_at_ms)[-args.sample :]
    report = check_propensities(decisions, alpha=ALPHA if args.alpha is None else args.alpha)
    print("\n".join(report.lines(limit=args.show)))
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_dict(), indent=2))
    return 0 if report.passed else EXIT_CHECK_FAILED


def _follow_propensities(args: argparse.Namespace) -> int:
    """`check propensities --follow`: the live check as a worker, until SIGINT/SIGTERM."""
    from tastemaker.cli.live_checks import build_propensity_watch
    from tastemaker.training.lifecycle.propensity_watch import LIVE_ALPHA

    if args.logs is not None or args.json is not None:
        raise UsageError(
            "--follow reads tastemaker.decisions as it is written and reports on /metrics: it takes no --logs or --json"
        )
    if not args.interval > 0 or args.window < 1:
        raise UsageError(
            f"--interval takes seconds > 0 and --window a count >= 1, got {args.interval} and {args.window}"
        )
    return run_worker(
        args,
        lambda settings: build_propensity_watch(
            settings,
            interval_s=args.interval,
            window=args.window,
            replay_sample=args.sample or 500,
            alpha=LIVE_ALPHA if args.alpha is None else args.alpha,
        ),
        metrics=lambda watch: watch,
        name="propensity check",
    )


def add_check(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    check = sub.add_parser("check", help="checks on live logs")
    check_sub = check.add_subparsers(dest="check_command", required=True, metavar="WHAT")
    about = (
        "are the logged propensities right? Replay (re-run the logging policy on each decision's "
        "logged candidates) and frequencies (repeated contexts' shown frequencies against their logged "
        "propensities); exit 3 when either fails"
    )
    propensities = check_sub.add_parser(
        "propensities",
        help=about,
        description=f"{about[0].upper()}{about[1:]}. Once over a log (--logs, or the rewarded topic), or "
        "alongside serving (--follow).",
    )
    propensities.add_argument(
        "--logs", type=Path, help="a `logs export` file; default: tastemaker.rewarded from TASTEMAKER_KAFKA_BOOTSTRAP"
    )
    propensities.add_argument("--sample", type=int, default=0, metavar="N", help="check only the latest N decisions")
    propensities.add_argument(
        "--alpha",
        type=float,
        help="false-alarm probability of the frequency check on correct logs (default 0.001; with --follow, "
        "per check: 1e-6)",
    )
    propensities.add_argument("--show", type=int, default=10, metavar="N", help="mismatches to print (default 10)")
    propensities.add_argument("--json", type=Path, metavar="OUT", help="also write the report as JSON")
    propensities.add_argument(
        "--follow",
        action="store_true",
        help="run alongside serving: follow tastemaker.decisions, check every --interval seconds (replay the "
        "decisions since the last check, at most --sample of them (default 500); frequencies over the latest "
        "--window), at a false-alarm rate of --alpha per check (1e-6); Prometheus gauges on --metrics-port "
        "(tastemaker_propensity_check_passed: alert on 0); runs until SIGINT/SIGTERM",
    )
    propensities.add_argument(
        "--interval", type=float, default=30.0, help="--follow: seconds between checks (default 30)"
    )
    propensities.add_argument(
        "--window", type=int, default=5000, help="--follow: decisions the frequency check sees (default 5000)"
    )
    propensities.add_argument(
        "--metrics-port", type=int, help="--follow: serve Prometheus metrics here (default TASTEMAKER_METRICS_PORT)"
    )
    propensities.set_defaults(func=cmd_check_propensities)


def add_logs(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    logs = sub.add_parser("logs", help="log export")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    export = logs_sub.add_parser("export", help="tastemaker.rewarded → JSON lines or Parquet")
    export.add_argument(
        "--out", type=Path, required=True, help="output file: .jsonl (protobuf JSON per line) or .parquet"
    )
    export.set_defaults(func=cmd_logs_export)
