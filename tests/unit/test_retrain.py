"""Counterfactual retraining: the gate promotes a candidate whose true value (known to the
simulator) is higher and refuses a deliberately worse one; validation stops logs with a slice
removed or a propensity bug; a re-run on the same logs repeats the same decision."""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_features import COUNT_TYPES
from tastemaker.bandits.reward_models import EngagementScorer, RewardModel, load_reward_model, write_manifest
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.services.home import HomeRankingService
from tastemaker.training.lifecycle.registry import Registry
from tastemaker.training.lifecycle.retrain import gate, retrain
from tastemaker.training.lifecycle.validation import ValidationFailed
from tastemaker.training.modeling.reward_training import train_reward_model
from tastemaker.v1 import records_pb2
from tests.support.fakes import FixedFeatures
from tests.support.simulated import rewarded_logs

# a small world and an exploration-heavy log (a randomised bucket), so that 2,400 held-out decisions
# are enough for the gate's intervals to tell a good model from a bad one
WORLD = SimulatedWorld(seed=3, n_shelves=5, cards_per_shelf=5)
ROWS = COLUMNS = 3
N_DECISIONS, HELD_OUT = 8000, 2400


@pytest.fixture(scope="module")
def logs() -> list[records_pb2.RewardedDecision]:
    clock = itertools.count(1_000_000, 1000)
    service = HomeRankingService(
        features=FixedFeatures(WORLD), catalog=WORLD.catalog(), model=EngagementScorer(EngagementLinearModel()),
        strategy=EpsilonGreedy(1.0), publish=lambda *a: True, decisions_topic="unused",
        default_max_shelves=ROWS, default_max_cards=COLUMNS, reward_window_s=1.0, rng=np.random.default_rng(0),
        clock_ms=lambda: next(clock),
    )  # fmt: skip
    # decision ids choose the held-out fifth (a hash of the id): fixed ids make every run the same
    ids = (uuid.UUID(int=i) for i in itertools.count(1))
    with mock.patch("uuid.uuid4", lambda: next(ids)):
        return rewarded_logs(service, WORLD, N_DECISIONS, context=lambda i: {"device": "ios" if i % 3 else "web"})


def _true_value(model: RewardModel, decisions: list[records_pb2.RewardedDecision]) -> float:
    """Expected clicks of greedy pages under `model`, for the same requests (the simulator's truth)."""
    features, shelves, values = FixedFeatures(WORLD), WORLD.catalog().shelves, []
    for rewarded in decisions:
        user = features.read(rewarded.decision.user_id)
        context = dict(rewarded.decision.context)
        counts = np.zeros(len(COUNT_TYPES))
        shelf_ids = [s.shelf_id for s in shelves]
        shelf_scores = model.score_level("shelf", counts, shelf_ids,
                                         np.array([user.shelf_engagement(i) for i in shelf_ids]), context)  # fmt: skip
        page = []
        for s in np.argsort(-shelf_scores, kind="stable")[:ROWS]:
            cards = shelves[s].card_ids
            scores = model.score_level("card", counts, list(cards),
                                       np.array([user.card_engagement(c) for c in cards]), context)  # fmt: skip
            page.append((shelves[s].shelf_id, [cards[c] for c in np.argsort(-scores, kind="stable")[:COLUMNS]]))
        values.append(WORLD.expected_clicks(rewarded.decision.user_id, page))
    return float(np.mean(values))


def _negated(source: Path, target: Path, version: str) -> Path:
    """A deliberately worse model: the same logistic regression with its weights negated."""
    target.mkdir(parents=True)
    with np.load(source / "weights.npz", allow_pickle=False) as weights:
        np.savez(target / "weights.npz", w0=-weights["w0"], b0=-weights["b0"])
    write_manifest(target, "logistic", version, {"registered_at": "2026-01-01T00:00:00Z"})
    return target


def test_the_gate_promotes_a_truly_better_candidate_and_refuses_a_worse_one(logs, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    seed_model = train_reward_model("logistic", logs, tmp_path / "seed", version="seed", epochs=3)
    anti = _negated(seed_model.directory, tmp_path / "anti", "anti")
    registry.register(anti)
    registry.promote("anti")

    summary = retrain(logs, registry, kind="logistic", epochs=3, say=lambda line: None)
    assert summary.trained and summary.gate["decision"] == "promote" and summary.promoted
    assert registry.current() == summary.version
    holdout = sorted(logs, key=lambda d: d.decision.served_at_ms)[-HELD_OUT:]
    candidate = load_reward_model(registry.path(summary.version))
    assert _true_value(candidate, holdout) > _true_value(load_reward_model(anti), holdout)
    manifest = registry.manifest(summary.version)
    assert manifest["parent"] == "anti" and manifest["gate"]["decision"] == "promote"
    assert manifest["data_window"]["n_decisions"] == N_DECISIONS - HELD_OUT and manifest["training"]["ips_clip"] == 10.0

    # a deliberately worse candidate against the new current model is refused
    worse = _negated(registry.path(summary.version), tmp_path / "worse", "worse")
    refused = gate(holdout, worse, registry.path(summary.version), summary.version)
    assert refused["decision"] == "refuse"
    assert _true_value(load_reward_model(worse), holdout) < _true_value(candidate, holdout)

    # the same logs again: nothing new is trained and nothing changes
    again = retrain(logs, registry, kind="logistic", epochs=3, say=lambda line: None)
    assert (again.version, again.trained, again.promoted) == (summary.version, False, False)
    assert registry.current() == summary.version
    assert [h["action"] for h in registry.history()] == ["promote", "promote"]
    assert registry.rollback() == "anti"


def test_validation_stops_a_removed_slice(logs, tmp_path: Path) -> None:
    ordered = sorted(logs, key=lambda d: d.decision.served_at_ms)
    cut = len(ordered) // 2  # from half-way on, a tier of users (device=ios) is missing from the logs
    sliced = ordered[:cut] + [d for d in ordered[cut:] if d.decision.context["device"] != "ios"]
    with pytest.raises(ValidationFailed, match="slice device=ios"):
        retrain(sliced, Registry(tmp_path / "r"), kind="logistic", epochs=1, say=lambda line: None)


def test_validation_stops_a_propensity_bug(logs, tmp_path: Path) -> None:
    buggy = []
    for i, rewarded in enumerate(logs):
        copy = records_pb2.RewardedDecision()
        copy.CopyFrom(rewarded)
        if i % 4 == 0:  # a logging bug: the shelf propensities of a quarter of the decisions halved
            for shelf in copy.decision.shown:
                shelf.propensity *= 0.5
        buggy.append(copy)
    with pytest.raises(ValidationFailed, match="propensities"):
        retrain(buggy, Registry(tmp_path / "r"), kind="logistic", epochs=1, say=lambda line: None)


def test_retrain_from_the_command_line(logs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tastemaker.services.cli import main
    from tastemaker.training.logs import write_export

    export = tmp_path / "rewarded.parquet"
    write_export(logs, export)
    registry = tmp_path / "registry"
    assert main(["retrain", "--registry", str(registry), "--logs", str(export), "--kind", "logistic",
                 "--epochs", "1"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert f"gate on {HELD_OUT} held-out decisions" in printed
    assert main(["models", "list", "--registry", str(registry)]) == 0
    assert "logistic-" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    buggy = records_pb2.RewardedDecision()
    buggy.CopyFrom(logs[0])
    buggy.decision.shown[0].propensity = 1.5
    bad.write_text("\n".join(json.dumps({"decision": {"decisionId": f"x{i}"}}) for i in range(3)))
    assert main(["retrain", "--registry", str(registry), "--logs", str(bad)]) == 2  # too few decisions
