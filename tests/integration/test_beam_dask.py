"""The Beam engine on a real Dask cluster: a scheduler and two worker processes (`LocalCluster`),
reached by address as a team's own cluster would be. The home and action-log pipelines give the
in-process runner's — and so the memory engine's — estimates to 1e-9 relative, from JSON lines
and Parquet; bad records fail the run (exit 2, counted), an empty log says so, and runner flags
that contradict each other are refused in one line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402

from tastemaker.cli import main  # noqa: E402
from tastemaker.records.log_files import write_export  # noqa: E402
from tastemaker.training.evaluation.beam_action_ope import BEAM_ESTIMATORS  # noqa: E402
from tests.support.action_logs import generic_columns, write_csv  # noqa: E402
from tests.unit.test_beam_ope import _same, logs  # noqa: E402, F401 - the shared rewarded-log fixture


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, scheduler_kwargs={"dashboard": False}
    ) as cluster:
        yield cluster.scheduler_address


def test_the_workers_are_two_other_processes(scheduler: str) -> None:
    with Client(scheduler) as client:
        pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids


def _evaluate(tmp_path: Path, name: str, *flags: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert main(["evaluate", "--engine", "beam", *flags, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_rewarded_logs_on_dask_equal_the_in_process_runner(logs, scheduler: str, tmp_path: Path) -> None:  # noqa: F811
    rewarded, directory = logs
    flags = ["--logs", str(directory / "rewarded-*.jsonl"), "--estimators", "ipw,snipw,dr,sndr,switch-dr,dm"]
    fnapi = _evaluate(tmp_path, "fnapi", *flags)
    dask = _evaluate(tmp_path, "dask", *flags, "--runner", "dask", "--dask-scheduler", scheduler)
    assert dask["n_decisions"] == fnapi["n_decisions"] == len(rewarded)
    for policy, expected in fnapi["policies"].items():
        assert set(dask["policies"][policy]["estimates"]) == set(expected["estimates"])
        for name, estimate in expected["estimates"].items():
            _same(dask["policies"][policy]["estimates"][name], estimate)
        for got, row in zip(dask["policies"][policy]["per_row"], expected["per_row"], strict=True):
            _same(got["ipw"], row["ipw"], weights=False)
    # the same decisions exported to Parquet
    write_export(rewarded, tmp_path / "rewarded.parquet")
    parquet = _evaluate(
        tmp_path, "parquet", "--logs", str(tmp_path / "rewarded.parquet"), "--runner", "dask",
        "--dask-scheduler", scheduler,
    )  # fmt: skip
    for policy, expected in fnapi["policies"].items():
        for name in ("ipw", "snipw", "cascade-ipw"):
            _same(parquet["policies"][policy]["estimates"][name], expected["estimates"][name])


def test_action_logs_on_dask_equal_memory(scheduler: str, tmp_path: Path) -> None:
    path = write_csv(generic_columns(1500), tmp_path / "log.csv")
    flags = ["--format", "csv", "--logs", str(path), "--policy", "greedy", "--policy", "softmax:0.05"]
    out = tmp_path / "memory.json"
    assert main(["evaluate", *flags, "--json", str(out)]) == 0
    memory = json.loads(out.read_text())
    dask = _evaluate(tmp_path, "dask", *flags, "--runner", "dask", "--dask-scheduler", scheduler)
    assert dask["n_decisions"] == memory["n_decisions"] == 1500
    for policy in ("greedy", "softmax:0.05"):
        for name in BEAM_ESTIMATORS:
            a, b = memory["policies"][policy]["estimates"][name], dask["policies"][policy]["estimates"][name]
            for key in ("value", "lower", "upper", "effective_sample_size"):
                assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-15), (policy, name, key)


def test_bad_records_and_empty_logs_exit_2_on_dask(
    logs, scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # noqa: F811
) -> None:  # fmt: skip
    _, directory = logs
    dask = ["--runner", "dask", "--dask-scheduler", scheduler]
    good = (directory / "rewarded-0.jsonl").read_text()
    (tmp_path / "garbage.jsonl").write_text(good + "not json\n{also not\n")
    assert main(["evaluate", "--engine", "beam", "--logs", str(tmp_path / "garbage.jsonl"), *dask]) == 2
    assert "2 unreadable (a line is not a RewardedDecision" in capsys.readouterr().err
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["evaluate", "--engine", "beam", "--logs", str(tmp_path / "empty.jsonl"), *dask]) == 2
    assert "no rewarded home decisions" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("action,reward,propensity\nred,1,0.5\nred,nan,0.5\nblue,1,2\n")
    assert main(["evaluate", "--engine", "beam", "--format", "csv", "--logs", str(tmp_path / "bad.csv"), *dask]) == 2
    assert "1 rows with a bad `propensity`; 1 rows with a bad `reward`" in capsys.readouterr().err
    assert main(["evaluate", "--engine", "beam", "--logs", str(tmp_path / "none-*.jsonl"), *dask]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--runner", "dask"], "--runner and --dask-scheduler are for --engine beam"),
        (["--engine", "beam", "--dask-scheduler", "tcp://127.0.0.1:1"], "--dask-scheduler is for --runner dask"),
        (["--engine", "beam", "--runner", "dask", "--dask-workers", "0"], "--dask-workers takes a count >= 1"),
        (["--engine", "beam", "--runner", "dask", "--beam-arg=--runner=FlinkRunner"], "name two runners"),
        (["--engine", "beam", "--runner", "dask", "--dask-scheduler", "tcp://127.0.0.1:9"], "no scheduler answers"),
    ],
)
def test_contradictory_runner_flags_exit_2(
    flags: list[str], reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "log.jsonl").write_text("")
    assert main(["evaluate", "--logs", str(tmp_path / "log.jsonl"), *flags]) == 2
    assert reason in capsys.readouterr().err
