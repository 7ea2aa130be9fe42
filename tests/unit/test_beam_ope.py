"""Two engines, one answer: the Apache Beam pipeline (DirectRunner) and the in-memory path
give the same estimates and intervals to 1e-9 relative: IPW and SNIPW per cell, whole page and
cascade, and DM, DR, SNDR, Switch-DR and DR-OS with the cross-fitted cell model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_models import EngagementScorer
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.cli import main
from tastemaker.records.log_files import write_jsonl
from tastemaker.services.home import HomeRankingService
from tastemaker.services.requests import HomeRequest
from tastemaker.training.evaluation.beam_ope import evaluate_with_beam
from tastemaker.training.evaluation.evaluate import evaluate
from tastemaker.training.evaluation.home_policies import DEFAULT_POLICIES as POLICIES
from tastemaker.training.evaluation.ope import ESTIMATORS, estimator_by_name
from tastemaker.v1 import records_pb2
from tests.support.fakes import FixedFeatures


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[records_pb2.RewardedDecision], Path]:
    world = SimulatedWorld(seed=2)
    service = HomeRankingService(
        features=FixedFeatures(world), catalog=world.catalog(), model=EngagementScorer(EngagementLinearModel()),
        strategy=EpsilonGreedy(0.3), publish=lambda *a: True, decisions_topic="unused",
        default_max_shelves=3, default_max_cards=4, reward_window_s=1.0, rng=np.random.default_rng(0),
    )  # fmt: skip
    rng = np.random.default_rng(3)
    rewarded = []
    for i in range(400):
        user_id = f"user-{i % 30}"
        decision = service.rank(HomeRequest(user_id, {}, (), 0, 0))
        clicks = world.respond(user_id, [(s.shelf_id, [c.card_id for c in s.cards]) for s in decision.shown], rng)
        outcomes = [
            records_pb2.Outcome(decision_id=decision.decision_id, item_id=c.card_id, reward=1.0) for c in clicks
        ]
        rewarded.append(records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(clicks))))
    directory = tmp_path_factory.mktemp("beam")
    # two shards, as an export split over files would be
    write_jsonl(rewarded[:150], directory / "rewarded-0.jsonl")
    write_jsonl(rewarded[150:], directory / "rewarded-1.jsonl")
    return rewarded, directory


def test_beam_matches_the_in_memory_engine(logs: tuple[list[records_pb2.RewardedDecision], Path]) -> None:
    rewarded, directory = logs
    in_memory = evaluate(rewarded, estimators=[estimator_by_name(n) for n in ESTIMATORS])
    beam = evaluate_with_beam(str(directory / "rewarded-*.jsonl"), list(POLICIES), model_based=True)
    assert beam["n_decisions"] == len(rewarded)
    names = ["slate-ipw", "slate-snipw", "cascade-ipw", "cascade-snipw", "cascade-dr", *ESTIMATORS]
    for policy in POLICIES:
        assert set(beam["policies"][policy]["estimates"]) == set(names)
        for name in names:
            _same(beam["policies"][policy]["estimates"][name], in_memory["policies"][policy]["estimates"][name])
        # per page row: the per-cell IPS of the row's cells and the row's term of the page-prefix IPS
        rows = in_memory["policies"][policy]["per_row"]
        assert len(beam["policies"][policy]["per_row"]) == len(rows) == 3
        for got, expected in zip(beam["policies"][policy]["per_row"], rows, strict=True):
            assert got["row"] == expected["row"] and set(got) == set(expected) == {"row", "ipw", "cascade-ipw"}
            _same(got["ipw"], expected["ipw"], weights=False)
            _same(got["cascade-ipw"], expected["cascade-ipw"], weights=False)


def _same(got: dict[str, Any], expected: dict[str, Any], weights: bool = True) -> None:
    """The same estimate and interval to 1e-9 relative, or no estimate in both (no support); with
    `weights`, the same diagnostics of the estimator's own weights and the same warnings."""
    for field in ("value", "lower", "upper"):
        if expected[field] is None:
            assert got[field] is None and "no support" in got["warning"], (field, got)
        else:
            assert got[field] == pytest.approx(expected[field], rel=1e-9), (field, got, expected)
    if weights:
        for field in ("effective_sample_size", "mean_weight", "unsupported_mass"):
            assert got[field] == pytest.approx(expected[field], rel=1e-9, abs=1e-12), (field, got, expected)
        assert got["warnings"] == expected["warnings"] and got.get("warning") == expected.get("warning")


def test_beam_engine_from_the_command_line(logs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, directory = logs
    out = tmp_path / "beam.json"
    code = main(["evaluate", "--engine", "beam", "--logs", str(directory / "rewarded-*.jsonl"),
                 "--policy", "greedy", "--json", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["engine"] == "beam" and set(report["policies"]) == {"greedy"}
    # the same table as the memory engine prints, from the same numbers
    printed = capsys.readouterr().out
    ipw = report["policies"]["greedy"]["estimates"]["ipw"]
    assert f"decisions: 400   on-policy mean reward: {report['on_policy_mean_reward']:.4f}" in printed
    assert f"{ipw['value']:.4f}  [{ipw['lower']:.4f}, {ipw['upper']:.4f}]" in printed and "per row" in printed
    # garbage: a clear exit 2 naming what is wrong, nothing half-evaluated; a blank line is nothing
    good = (directory / "rewarded-0.jsonl").read_text()
    (tmp_path / "garbage.jsonl").write_text(good + "\nnot json\n")
    assert main(["evaluate", "--engine", "beam", "--logs", str(tmp_path / "garbage.jsonl")]) == 2
    assert "1 unreadable (a line is not a RewardedDecision" in capsys.readouterr().err
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet at all")
    assert main(["evaluate", "--engine", "beam", "--logs", str(tmp_path / "garbage.parquet")]) == 2
    capsys.readouterr()
    (tmp_path / "other.jsonl").write_text("{}\n")  # a line of no home decision
    assert main(["evaluate", "--engine", "beam", "--logs", str(tmp_path / "other.jsonl")]) == 2
    assert "no rewarded home decisions" in capsys.readouterr().err
    assert main(["evaluate", "--engine", "beam", "--estimators", "dr"]) == 2  # no --logs
    code = main(["evaluate", "--engine", "beam", "--logs", str(directory / "rewarded-*.jsonl"),
                 "--policy", "greedy", "--estimators", "dr,sndr", "--json", str(out)])  # fmt: skip
    assert code == 0
    assert set(json.loads(out.read_text())["policies"]["greedy"]["estimates"]) >= {"dr", "sndr", "ipw"}


def test_beam_counts_what_the_memory_engine_counts_and_says_no_support_alike(tmp_path: Path) -> None:
    """Greedy logs (ε = 0) mixed with a sticker decision and a deferred home decision never
    activated: both engines leave those two out (and count the unactivated one), and a target that
    always shows the reverse order has no support: no estimate in either engine (not 0 ± 0), while
    the logging policy's agree to 1e-9, per row included."""
    from tests.support.simulated import home_service, rewarded_logs

    world = SimulatedWorld(seed=4)
    service = home_service(world, EngagementScorer(EngagementLinearModel()), EpsilonGreedy(0.0))
    home = rewarded_logs(service, world, 60)
    deferred = records_pb2.RewardedDecision()
    deferred.CopyFrom(home[0])
    deferred.decision.decision_id, deferred.decision.deferred = "never-activated", True
    sticker = records_pb2.RewardedDecision(decision=records_pb2.DecisionLog(decision_id="s", surface="stickers"))
    mixed = [*home, deferred, sticker]
    write_jsonl(mixed, tmp_path / "mixed.jsonl")
    reverse = "tests.unit.test_evaluate:ReverseStrategy"

    in_memory = evaluate(mixed, policies=["logging", reverse])
    beam = evaluate_with_beam(str(tmp_path / "mixed.jsonl"), ["logging", reverse])
    assert beam["n_decisions"] == in_memory["n_decisions"] == len(home)
    assert beam["n_unactivated"] == in_memory["n_unactivated"] == 1
    assert in_memory["policies"][reverse]["estimates"]["slate-ipw"]["value"] is None  # the premise
    for policy in ("logging", reverse):
        for name, expected in in_memory["policies"][policy]["estimates"].items():
            _same(beam["policies"][policy]["estimates"][name], expected)
        rows = zip(beam["policies"][policy]["per_row"], in_memory["policies"][policy]["per_row"], strict=True)
        for got, expected in rows:
            _same(got["ipw"], expected["ipw"], weights=False)
            _same(got["cascade-ipw"], expected["cascade-ipw"], weights=False)
    with pytest.raises(ValueError, match="deferred and never activated"):
        write_jsonl([deferred], tmp_path / "deferred.jsonl")
        evaluate_with_beam(str(tmp_path / "deferred.jsonl"), ["logging"])


def test_beam_leaves_out_cascade_estimates_on_logs_that_carry_only_whole_pages(tmp_path: Path) -> None:
    """LinUCB logs carry each item's and the whole page's probability, not the page prefixes': both
    engines give every other estimate, the same, and no cascade one, with the same note."""
    from tests.unit.test_home_strategies import _logs

    logs = _logs("linucb", n=80)
    write_jsonl(logs, tmp_path / "linucb.jsonl")
    estimators = [estimator_by_name(n) for n in ESTIMATORS]
    in_memory = evaluate(logs, policies=["logging", "greedy"], estimators=estimators)
    beam = evaluate_with_beam(str(tmp_path / "linucb.jsonl"), ["logging", "greedy"], model_based=True)
    assert beam["notes"] == in_memory["notes"] and "page-prefix" in beam["notes"][0]
    for policy in ("logging", "greedy"):
        expected = in_memory["policies"][policy]["estimates"]
        assert set(beam["policies"][policy]["estimates"]) == set(expected) == {"slate-ipw", "slate-snipw", *ESTIMATORS}
        for name, entry in expected.items():
            _same(beam["policies"][policy]["estimates"][name], entry)
        assert all(set(row) == {"row", "ipw"} for row in beam["policies"][policy]["per_row"])


def test_beam_reads_parquet_exports_as_it_reads_json_lines(
    logs: tuple[list[records_pb2.RewardedDecision], Path], tmp_path: Path
) -> None:
    """`logs export --out X.parquet` files (what the Kubernetes evaluate Job points at) give the
    estimates the JSON-lines export gives."""
    from tastemaker.records.log_files import write_parquet

    rewarded, directory = logs
    write_parquet(rewarded[:150], tmp_path / "rewarded-0.parquet")
    write_parquet(rewarded[150:], tmp_path / "rewarded-1.parquet")
    from_parquet = evaluate_with_beam(str(tmp_path / "rewarded-*.parquet"), ["greedy"])
    from_json = evaluate_with_beam(str(directory / "rewarded-*.jsonl"), ["greedy"])
    assert from_parquet["n_decisions"] == len(rewarded)
    for name, expected in from_json["policies"]["greedy"]["estimates"].items():
        _same(from_parquet["policies"]["greedy"]["estimates"][name], expected)
