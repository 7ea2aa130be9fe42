"""The three reward models: trained from rewarded decisions (TensorFlow for logistic and dnn, YDF
for gbt), served without TensorFlow with the training framework's own predictions, and swapped
in the ranker by configuration alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastemaker.bandits.reward_features import COUNT_TYPES, encode
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.models.artifacts import ArtifactError, load_reward_model
from tastemaker.services.bootstrap import reward_model_for
from tastemaker.services.config import ConfigError, Settings
from tastemaker.services.home import HomeRankingService
from tastemaker.services.requests import HomeRequest
from tastemaker.training.evaluation.evaluate import evaluate
from tastemaker.training.modeling.reward_training import train_reward_model, training_rows
from tastemaker.v1 import records_pb2
from tests.support.simulated import home_service, rewarded_logs

WORLD = SimulatedWorld(seed=1)


def _service(model) -> HomeRankingService:  # type: ignore[no-untyped-def]
    return home_service(WORLD, model)


@pytest.fixture(scope="module")
def logs() -> list[records_pb2.RewardedDecision]:
    return rewarded_logs(_service(None), WORLD, 1500,
                         context=lambda i: {"device": "ios" if i % 2 else "web"})  # fmt: skip


@pytest.mark.parametrize("kind", ["logistic", "dnn", "fm", "gbt"])
def test_trained_served_and_swapped_by_configuration(kind: str, logs, tmp_path: Path) -> None:
    trained = train_reward_model(kind, logs, tmp_path / kind, version=f"{kind}-test", epochs=3)
    assert trained.metrics["heldout_auc"] > 0.55, trained.metrics  # it learned something (position, items)
    served = load_reward_model(trained.directory)
    x, _, _, _ = training_rows(logs[:200])
    np.testing.assert_allclose(served.predict(x), trained.reference(x), atol=2e-5)  # type: ignore[attr-defined]

    model = reward_model_for(Settings(reward_model=str(trained.directory)))
    assert model.version == f"{kind}-test"
    decision = _service(model).rank(HomeRequest("user-3", {"device": "ios"}, (), 0, 0))
    assert decision.model_version == f"{kind}-test"
    values = dict(zip(decision.feature_names, decision.feature_values, strict=True))
    counts = np.array([values[f"count:{t}"] for t in COUNT_TYPES])
    ids = list(decision.shelf_candidates.item_ids)
    expected = trained.reference(encode(counts, np.array([values[f"shelf:{i}"] for i in ids]), ids, "shelf",
                                        {"device": "ios"}))  # fmt: skip
    np.testing.assert_allclose(decision.shelf_candidates.scores, expected, atol=2e-5)

    # and a saved model version is a policy to evaluate offline
    report = evaluate(logs[:300], policies=[f"model:{trained.directory}"], slates=False)
    assert np.isfinite(report["policies"][f"model:{trained.directory}"]["estimates"]["ipw"]["value"])


def test_a_changed_artifact_is_refused(logs, tmp_path: Path) -> None:
    trained = train_reward_model("logistic", logs[:300], tmp_path / "m", epochs=1)
    weights = trained.directory / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="checksum"):
        load_reward_model(trained.directory)
    with pytest.raises(ConfigError, match="TASTEMAKER_REWARD_MODEL"):
        reward_model_for(Settings(reward_model=str(trained.directory)))
    with pytest.raises(ArtifactError, match="manifest"):
        load_reward_model(tmp_path / "nothing-here")


@pytest.mark.parametrize("kind", ["dnn", "fm", "gbt"])
def test_serving_never_imports_tensorflow(kind: str, logs, tmp_path: Path) -> None:
    import subprocess
    import sys

    trained = train_reward_model(kind, logs[:300], tmp_path / kind, epochs=1)
    probe = (
        "import sys, numpy as np\n"
        "from tastemaker.services.bootstrap import reward_model_for\n"
        "from tastemaker.services.config import Settings\n"
        f"m = reward_model_for(Settings(reward_model={str(trained.directory)!r}))\n"
        "print(m.score_level('shelf', np.zeros(10), ['a', 'b'], np.array([1.0, 5.0]))[0] >= 0)\n"
        "assert 'tensorflow' not in sys.modules, 'serving imported TensorFlow'\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_train_from_the_command_line(logs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tastemaker.cli import main
    from tastemaker.records.log_files import write_export

    export = tmp_path / "rewarded.parquet"
    write_export(logs[:400], export)
    out = tmp_path / "model"
    assert main(["train", "reward-model", "--kind", "logistic", "--logs", str(export), "--out", str(out),
                 "--epochs", "1", "--version", "lr-cli"]) == 0  # fmt: skip
    assert f"TASTEMAKER_REWARD_MODEL={out}" in capsys.readouterr().out
    assert load_reward_model(out).version == "lr-cli"
    assert main(["train", "reward-model", "--kind", "logistic", "--logs", str(export), "--out", str(out),
                 "--epochs", "0"]) == 2  # fmt: skip
    assert main(["train", "reward-model", "--kind", "fm", "--logs", str(export), "--out", str(out),
                 "--factors", "0"]) == 2  # fmt: skip
    assert main(["train", "reward-model", "--kind", "fm", "--logs", str(export), "--out", str(out),
                 "--epochs", "1", "--factors", "3", "--version", "fm-cli"]) == 0  # fmt: skip
    served = load_reward_model(out)
    assert served.version == "fm-cli" and served.v.shape[1] == 3  # type: ignore[attr-defined]


def test_the_factorization_machine_is_the_sum_over_every_pair_of_columns() -> None:
    from tastemaker.bandits.reward_models import FactorizationMachine

    rng = np.random.default_rng(0)
    x, w, v = rng.normal(size=(5, 7)), rng.normal(size=7), rng.normal(size=(7, 3))
    model = FactorizationMachine("fm", 0.3, w, v)
    logits = [
        0.3 + row @ w + sum(v[i] @ v[j] * row[i] * row[j] for i in range(7) for j in range(i + 1, 7)) for row in x
    ]
    np.testing.assert_allclose(model.predict(x), 1.0 / (1.0 + np.exp(-np.array(logits))), rtol=1e-12)


@pytest.mark.parametrize("kind", ["logistic", "fm"])
def test_an_artifact_of_a_narrower_encoding_keeps_serving(kind: str, logs, tmp_path: Path) -> None:
    """A model trained before the encoding grew columns (here: without the explanation columns)
    is served on its own columns, picked by name from today's rows; one naming a column today's
    encoding lacks is refused."""
    import json

    from tastemaker.bandits.reward_features import feature_names
    from tastemaker.models.artifacts import write_manifest

    trained = train_reward_model(kind, logs[:300], tmp_path / "new", epochs=1)
    names = feature_names()
    keep = np.array([i for i, name in enumerate(names) if not name.startswith("explanation_")])
    old = tmp_path / "old"
    old.mkdir()
    with np.load(trained.directory / "weights.npz", allow_pickle=False) as weights:
        arrays = {k: weights[k] for k in weights.files}
    if kind == "fm":
        arrays["w"], arrays["v"] = arrays["w"][keep], arrays["v"][keep]
    else:
        arrays["w0"] = arrays["w0"][keep]
    np.savez(old / "weights.npz", **arrays)
    write_manifest(old, kind, "narrow", {})
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["features"] = [names[i] for i in keep]
    (old / "manifest.json").write_text(json.dumps(manifest))
    served = load_reward_model(old)
    x, _, _, _ = training_rows(logs[:50])  # no explanations: the dropped columns are all 0
    np.testing.assert_allclose(served.predict(served.select(x)), trained.reference(x), atol=2e-5)  # type: ignore[attr-defined]
    counts, engagement = np.zeros(10), np.array([1.0, 4.0])
    assert served.score_level("shelf", counts, ["a", "b"], engagement).shape == (2,)
    manifest["features"] = [*manifest["features"], "a_column_nobody_encodes"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="other feature columns"):
        load_reward_model(old)
