"""The counterfactual loop end to end, as an operator runs it: `tastemaker up --demo` serves a poor
current model from the registry with a uniformly exploring bucket and exports its logs;
`tastemaker retrain` learns from them and promotes a candidate whose true value (the simulator's
expected clicks of its greedy pages) is higher; a deliberately worse candidate is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.records.log_files import read_export
from tastemaker.training.lifecycle.registry import Registry
from tastemaker.training.lifecycle.retrain import gate
from tests.support.models import engagement_logistic
from tests.support.simulated import true_value

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "tastemaker.cli"]


def test_a_retrain_from_demo_logs_promotes_a_truly_better_model(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    # the current model prefers what each user has engaged with least: a better policy exists
    registry.register(engagement_logistic(tmp_path / "anti", "anti-engagement", -2.0))
    registry.promote("anti-engagement")
    logs = tmp_path / "demo.parquet"
    env = {**os.environ, "TASTEMAKER_MODEL_REGISTRY": str(root)}
    up = subprocess.run(
        [*CLI, "up", "--demo", "--port", "0", "--duration", "45", "--epsilon", "1.0", "--reward-window-s", "2",
         "--export-logs", str(logs)],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr[-3000:]
    decisions = read_export(logs)
    assert len(decisions) > 500, len(decisions)
    assert {d.decision.model_version for d in decisions} == {"anti-engagement"}

    done = subprocess.run(
        [*CLI, "retrain", "--registry", str(root), "--logs", str(logs), "--kind", "logistic",
         "--epochs", "3"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "promoted; current model: logistic-" in done.stdout, done.stdout
    candidate = registry.current()
    assert candidate is not None and candidate.startswith("logistic-")
    manifest = registry.manifest(candidate)
    assert manifest["gate"]["decision"] == "promote" and manifest["parent"] == "anti-engagement"

    ordered = sorted(decisions, key=lambda d: d.decision.served_at_ms)
    held_out = ordered[int(len(ordered) * 0.7) :]
    world = SimulatedWorld()  # the demo's world
    truth = {
        name: true_value(world, f"model:{registry.path(name)}", held_out) for name in (candidate, "anti-engagement")
    }
    assert truth[candidate] > truth["anti-engagement"] + 1.0, truth

    # a deliberately worse candidate (anti-engagement again, as a new version) is refused
    worse = engagement_logistic(tmp_path / "worse", "worse", -2.0)
    refused = gate(held_out, worse, registry.path(candidate), candidate)
    assert refused["decision"] == "refuse", refused
    assert true_value(world, f"model:{worse}", held_out) < truth[candidate]
