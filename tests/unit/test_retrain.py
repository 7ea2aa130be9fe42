"""Counterfactual retraining: the gate promotes a candidate whose true value (known to the
simulator) is higher and refuses a deliberately worse one; validation stops logs with a slice
removed or a propensity bug; a re-run on the same logs repeats the same decision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tastemaker.models.artifacts import load_reward_model, write_manifest
from tastemaker.training.lifecycle.registry import Registry
from tastemaker.training.lifecycle.retrain import gate, retrain
from tastemaker.training.lifecycle.validation import ValidationFailed
from tastemaker.training.modeling.reward_training import train_reward_model
from tastemaker.v1 import records_pb2
from tests.support.retrain_world import (
    HELD_OUT,
    N_DECISIONS,
    retrain_logs,
    true_value_of,
)


@pytest.fixture(scope="module")
def logs() -> list[records_pb2.RewardedDecision]:
    return retrain_logs()


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
    assert true_value_of(candidate, holdout) > true_value_of(load_reward_model(anti), holdout)
    manifest = registry.manifest(summary.version)
    assert manifest["parent"] == "anti" and manifest["gate"]["decision"] == "promote"
    assert manifest["data_window"]["n_decisions"] == N_DECISIONS - HELD_OUT and manifest["training"]["ips_clip"] == 10.0

    # a deliberately worse candidate against the new current model is refused
    worse = _negated(registry.path(summary.version), tmp_path / "worse", "worse")
    refused = gate(holdout, worse, registry.path(summary.version), summary.version)
    assert refused["decision"] == "refuse"
    assert true_value_of(load_reward_model(worse), holdout) < true_value_of(candidate, holdout)

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
    from tastemaker.cli import main
    from tastemaker.records.log_files import write_export

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


def test_a_factorization_machine_goes_through_the_gate_like_the_others(logs, tmp_path: Path) -> None:
    """`retrain --kind fm`: trained, judged by the gate against the current model and promoted
    when better (here against the deliberately worse negated model)."""
    registry = Registry(tmp_path / "registry")
    seed_model = train_reward_model("logistic", logs, tmp_path / "seed", version="seed", epochs=3)
    registry.register(_negated(seed_model.directory, tmp_path / "anti", "anti"))
    registry.promote("anti")
    summary = retrain(logs, registry, kind="fm", epochs=3, say=lambda line: None)
    assert summary.version.startswith("fm-") and summary.gate["decision"] == "promote" and summary.promoted
    holdout = sorted(logs, key=lambda d: d.decision.served_at_ms)[-HELD_OUT:]
    assert true_value_of(load_reward_model(registry.path(summary.version)), holdout) > true_value_of(
        load_reward_model(registry.path("anti")), holdout
    )
