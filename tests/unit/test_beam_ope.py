"""Two engines, one answer: the Apache Beam pipeline (DirectRunner) and the in-memory path
give the same estimates and intervals to 1e-9 relative: IPW and SNIPW per cell, whole page and
cascade, and DM, DR, SNDR, Switch-DR and DR-OS with the cross-fitted cell model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_models import EngagementScorer
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.services.cli import main
from tastemaker.services.home import HomeRankingService, HomeRequest
from tastemaker.training.evaluation.beam_ope import evaluate_with_beam
from tastemaker.training.evaluation.evaluate import POLICIES, evaluate
from tastemaker.training.evaluation.ope import ESTIMATORS, estimator_by_name
from tastemaker.training.logs import write_jsonl
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
    names = ["slate-ipw", "slate-snipw", "cascade-ipw", "cascade-snipw", *ESTIMATORS]
    for policy in POLICIES:
        assert set(beam["policies"][policy]["estimates"]) == set(names)
        for name in names:
            expected = in_memory["policies"][policy]["estimates"][name]
            got = beam["policies"][policy]["estimates"][name]
            for field in ("value", "lower", "upper"):
                assert got[field] == pytest.approx(expected[field], rel=1e-9), (policy, name, field)


def test_beam_engine_from_the_command_line(logs, tmp_path: Path) -> None:
    _, directory = logs
    out = tmp_path / "beam.json"
    code = main(["evaluate", "--engine", "beam", "--logs", str(directory / "rewarded-*.jsonl"),
                 "--policy", "greedy", "--json", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["engine"] == "beam" and set(report["policies"]) == {"greedy"}
    assert main(["evaluate", "--engine", "beam", "--estimators", "dr"]) == 2  # no --logs
    code = main(["evaluate", "--engine", "beam", "--logs", str(directory / "rewarded-*.jsonl"),
                 "--policy", "greedy", "--estimators", "dr,sndr", "--json", str(out)])  # fmt: skip
    assert code == 0
    assert set(json.loads(out.read_text())["policies"]["greedy"]["estimates"]) >= {"dr", "sndr", "ipw"}
