"""The one way in to off-policy evaluation: an `EvaluationJob` says which log (family and file),
which engine, which policies and estimators; `run` picks the path and returns the report with
its text. The CLI (`tastemaker evaluate`) only turns flags into a job.

| log family                               | memory engine            | beam engine                       |
|------------------------------------------|--------------------------|-----------------------------------|
| rewarded home decisions (`rewarded`)     | `evaluate.evaluate`      | `beam_ope.evaluate_with_beam`     |
| action logs (`obd`, `csv`, `parquet`)    | `action_eval`            | `beam_action_ope`                 |

A `.parquet` file written by `tastemaker logs export` holds rewarded decisions and is read as such.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.training.evaluation.action_log import ActionLog
from tastemaker.training.evaluation.beam_runners import DEFAULT_DASK_WORKERS, Runner
from tastemaker.training.evaluation.ope import OffPolicyEstimator, estimator_by_name
from tastemaker.v1 import records_pb2

FORMATS = ("rewarded", "parquet", "csv", "obd")
ENGINES = ("memory", "beam")
#: estimators run when none are named
DEFAULT_ESTIMATORS = {"rewarded": "ipw,snipw", "action": "ipw,snipw,dm,dr,sndr,switch-dr,dr-os"}


class EvaluationError(ValueError):
    """The job cannot run as asked; the message says why in one line."""


@dataclass(frozen=True)
class EvaluationJob:
    #: rewarded (`tastemaker logs export` output), or an action log: parquet, csv (generic layout), obd
    format: str = "rewarded"
    engine: str = "memory"
    #: the log file (a glob for the beam engine); None: rewarded decisions from `load_rewarded`
    logs: Path | None = None
    #: policy names; empty: the family's defaults
    policies: Sequence[str] = ()
    #: estimator names; empty: the family's defaults
    estimators: Sequence[str] = ()
    bootstrap: int = 0
    beam_args: Sequence[str] = field(default_factory=list)
    beam_output: str | None = None
    #: where the beam engine runs: fnapi (in this process) or dask (`beam_runners`)
    runner: str = "fnapi"
    dask_scheduler: str | None = None
    dask_workers: int = DEFAULT_DASK_WORKERS
    #: fit the logging policy's propensities from the log instead of reading them (action logs)
    estimate_propensities: bool = False

    def beam_runner(self) -> Runner:
        return Runner(self.runner, self.dask_scheduler, self.dask_workers)

    def family(self) -> str:
        """`rewarded` or `action`: a .parquet export of rewarded decisions counts as rewarded."""
        if self.format == "parquet" and self.logs is not None and self.logs.is_file():
            from tastemaker.records.log_files import is_rewarded_parquet

            if is_rewarded_parquet(self.logs):
                return "rewarded"
        return "rewarded" if self.format == "rewarded" else "action"


@dataclass(frozen=True)
class EvaluationResult:
    report: dict[str, Any]
    #: the report as a terminal shows it
    text: str


def _estimators(job: EvaluationJob, family: str) -> list[OffPolicyEstimator]:
    names = list(job.estimators) or DEFAULT_ESTIMATORS[family].split(",")
    try:
        return [estimator_by_name(name.strip()) for name in names if name.strip()]
    except ValueError as exc:
        raise EvaluationError(f"--estimators: {exc}") from None


def _check(job: EvaluationJob) -> None:
    if job.format not in FORMATS:
        raise EvaluationError(f"--format: {job.format!r} is not one of {', '.join(FORMATS)}")
    if job.engine not in ENGINES:
        raise EvaluationError(f"--engine: {job.engine!r} is not one of {', '.join(ENGINES)}")
    if job.bootstrap < 0:
        raise EvaluationError(f"--bootstrap must be 0 or a number of resamples, got {job.bootstrap}")
    if job.bootstrap and job.engine == "beam":
        raise EvaluationError("--engine beam gives analytic intervals; --bootstrap is for --engine memory")
    if job.engine != "beam" and (job.runner != "fnapi" or job.dask_scheduler is not None):
        raise EvaluationError("--runner and --dask-scheduler are for --engine beam")
    try:
        job.beam_runner().check(job.beam_args)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None
    if job.estimate_propensities and (job.family() != "action" or job.engine != "memory"):
        raise EvaluationError(
            "--estimate-propensities is for action logs (--format obd, csv or parquet) with --engine memory: "
            "rewarded decisions always carry the propensities serving logged"
        )


def run(
    job: EvaluationJob, load_rewarded: Callable[[], list[records_pb2.RewardedDecision]] | None = None
) -> EvaluationResult:
    """Evaluate `job`; `load_rewarded` supplies rewarded decisions when the job names no file (the
    CLI reads them from Kafka). Raises `EvaluationError` for anything the caller asked wrongly."""
    _check(job)
    family = job.family()
    estimators = _estimators(job, family)
    if family == "action":
        return _action(job, estimators)
    return _rewarded(job, estimators, load_rewarded)


def _action(job: EvaluationJob, estimators: list[OffPolicyEstimator]) -> EvaluationResult:
    from tastemaker.records.log_files import LogFormatError
    from tastemaker.training.evaluation.action_policies import PolicyError

    policies = list(job.policies) or ["uniform-random"]
    if job.logs is None:
        raise EvaluationError(f"--format {job.format} needs --logs FILE")
    try:
        if job.engine == "beam":
            from tastemaker.training.evaluation.beam_action_ope import evaluate_action_log_with_beam
            from tastemaker.training.evaluation.beam_runners import pipeline_args

            with pipeline_args(job.beam_runner(), job.beam_args) as args:
                report = evaluate_action_log_with_beam(
                    str(job.logs), job.format, policies, [e.name for e in estimators],
                    pipeline_args=args, output_prefix=job.beam_output,
                )  # fmt: skip
            from tastemaker.training.evaluation.evaluate import format_report

            return EvaluationResult(report, format_report(report))
        from tastemaker.training.evaluation.action_eval import evaluate_action_log
        from tastemaker.training.evaluation.log_readers import read_action_log

        log = read_action_log(job.logs, job.format)
        if job.estimate_propensities:
            return _with_estimated_propensities(log, policies, estimators, job)
        report = evaluate_action_log(log, policies, estimators, job.format, bootstrap=job.bootstrap)
    except (LogFormatError, PolicyError, ValueError) as exc:
        raise EvaluationError(str(exc)) from None
    from tastemaker.training.evaluation.evaluate import format_report

    return EvaluationResult(report, format_report(report))


def _with_estimated_propensities(
    log: ActionLog, policies: list[str], estimators: list[OffPolicyEstimator], job: EvaluationJob
) -> EvaluationResult:
    """The estimates with fitted propensities, said loudly, and beside them the same estimates with
    the log's own propensities (when it has them) for comparison."""
    from tastemaker.training.evaluation.action_eval import evaluate_action_log
    from tastemaker.training.evaluation.evaluate import format_report
    from tastemaker.training.evaluation.propensity_estimate import with_estimated_propensities

    estimated, fit = with_estimated_propensities(log)
    report = evaluate_action_log(estimated, policies, estimators, job.format, bootstrap=job.bootstrap)
    report["propensities"] = fit.describe()
    report["propensity_fit"] = {"windows": fit.windows, "strength": fit.strength, "log_likelihood": fit.log_likelihood}
    banner = f"*** PROPENSITIES {fit.describe()} ***"
    text = f"{banner}\n{format_report(report)}"
    logged = log.propensity
    if np.isfinite(logged).all() and (logged > 0).all():
        with_logged = evaluate_action_log(log, policies, estimators, job.format, bootstrap=job.bootstrap)
        report["with_logged_propensities"] = with_logged
        text += f"\n\nfor comparison, with the log's own propensities:\n{format_report(with_logged)}"
    return EvaluationResult(report, text + f"\n{banner}")


def _rewarded(
    job: EvaluationJob,
    estimators: list[OffPolicyEstimator],
    load_rewarded: Callable[[], list[records_pb2.RewardedDecision]] | None,
) -> EvaluationResult:
    from tastemaker.records.log_files import LogFormatError, read_export
    from tastemaker.records.surfaces import HOME
    from tastemaker.training.evaluation.action_policies import PolicyError
    from tastemaker.training.evaluation.evaluate import evaluate, format_report
    from tastemaker.training.evaluation.home_policies import DEFAULT_POLICIES, resolve
    from tastemaker.training.evaluation.sticker_ope import evaluate_stickers, format_sticker_report, sticker_decisions

    policies = list(job.policies) or list(DEFAULT_POLICIES)
    for name in policies:
        try:
            resolve(name)
        except PolicyError as exc:
            raise EvaluationError(f"--policy: {exc}") from None
    if job.engine == "beam":
        if job.logs is None:
            raise EvaluationError("--engine beam reads files: give --logs 'PATH-or-GLOB' (`tastemaker logs export`)")
        unsupported = [e.name for e in estimators if e.name not in ("ipw", "snipw") and not e.needs_reward_model]
        if unsupported:
            raise EvaluationError(f"--engine beam does not compute {','.join(unsupported)}")
        from tastemaker.training.evaluation.beam_io import NoSuchLog
        from tastemaker.training.evaluation.beam_ope import evaluate_with_beam
        from tastemaker.training.evaluation.beam_runners import pipeline_args

        try:
            with pipeline_args(job.beam_runner(), job.beam_args) as args:
                report = evaluate_with_beam(
                    str(job.logs),
                    policies,
                    pipeline_args=args,
                    output_prefix=job.beam_output,
                    model_based=any(e.needs_reward_model for e in estimators),
                )
        except NoSuchLog as exc:
            raise EvaluationError(f"--logs {exc}") from None
        except ValueError as exc:  # no home decisions in the files, or none that count
            raise EvaluationError(str(exc)) from None
        return EvaluationResult(report, format_report(report))
    if job.logs is not None:
        if not job.logs.is_file():
            raise EvaluationError(f"--logs {job.logs}: no such file")
        try:
            rewarded = read_export(job.logs)
        except LogFormatError as exc:
            raise EvaluationError(str(exc)) from None
    elif load_rewarded is not None:
        rewarded = load_rewarded()
    else:
        raise EvaluationError("give --logs FILE: no other source of rewarded decisions was configured")
    if not rewarded:
        raise EvaluationError("no rewarded decisions found to evaluate")
    stickers = sticker_decisions(rewarded)
    report, text = {}, ""
    if not stickers or any(d.decision.surface == HOME for d in rewarded):
        try:
            report = evaluate(rewarded, policies, estimators, bootstrap=job.bootstrap)
        except PolicyError as exc:
            raise EvaluationError(f"--policy: {exc}") from None
        except ValueError as exc:  # e.g. every home decision deferred and never activated
            raise EvaluationError(str(exc)) from None
        text = format_report(report)
    if stickers:  # the server's and the devices' suggestion lists, each counted once
        report["stickers"] = evaluate_stickers(stickers)
        text += ("\n\n" if text else "") + "Stickers\n" + format_sticker_report(report["stickers"])
    return EvaluationResult(report, text)
