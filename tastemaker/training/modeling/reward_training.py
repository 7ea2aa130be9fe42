"""Batch training of the home reward models from rewarded decisions: logistic regression, a deep
network and a factorization machine in TensorFlow (exported as numpy weights), gradient-boosted
trees with YDF.

Rows: every shown shelf (label: a click anywhere in its row) and every shown card (label: a click
on it), with the features `reward_features.encode` builds from what the decision logged. A fifth
of the decisions (by a hash of the decision id) is held out for the log loss and AUC written to
the manifest.

    tastemaker train reward-model --kind logistic|dnn|fm|gbt --logs rewarded.parquet --out models/rm-1
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.bandits.reward_features import feature_names
from tastemaker.bandits.reward_models import KINDS
from tastemaker.models.artifacts import write_manifest
from tastemaker.optional import require
from tastemaker.training.modeling.reward_rows import training_rows
from tastemaker.v1 import records_pb2


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (the Mann–Whitney statistic, ties counted half)."""
    positives, negatives = p[y > 0.5], p[y <= 0.5]
    if not len(positives) or not len(negatives):
        return float("nan")
    order = np.argsort(np.concatenate([positives, negatives]), kind="stable")
    ranks = np.empty(len(order))
    values = np.concatenate([positives, negatives])[order]
    ranks[order] = _average_ranks(values)
    return float(
        (ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2) / (len(positives) * len(negatives))
    )


def _average_ranks(sorted_values: np.ndarray) -> np.ndarray:
    ranks = np.arange(1, len(sorted_values) + 1, dtype=np.float64)
    start = 0
    for i in range(1, len(sorted_values) + 1):
        if i == len(sorted_values) or sorted_values[i] != sorted_values[start]:
            ranks[start:i] = (start + 1 + i) / 2
            start = i
    return ranks


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


#: what the models regress on: the logged clicks importance-weighted, or doubly robust pseudo-outcomes
TARGETS = ("ips", "dr")


@dataclass(frozen=True)
class Trained:
    directory: Path
    version: str
    #: the training framework's own prediction (TensorFlow or YDF), to check the served one against
    reference: Callable[[np.ndarray], np.ndarray]
    metrics: dict[str, float]


def _tensorflow_dense(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, hidden: Sequence[int], epochs: int, seed: int, loss: str
) -> tuple[list[tuple[np.ndarray, np.ndarray]], Callable[[np.ndarray], np.ndarray]]:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = require("tensorflow", "ml", "training a logistic or dnn reward model")
    keras = require("tf_keras", "ml", "training a logistic or dnn reward model")

    tf.keras.utils.set_random_seed(seed)
    layers: list[Any] = [keras.layers.Input((x.shape[1],))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    model.fit(
        x.astype(np.float32), y.astype(np.float32), sample_weight=weight.astype(np.float32),
        epochs=epochs, batch_size=256, verbose=0,
    )  # fmt: skip
    weights = [
        (layer.kernel.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64)) for layer in model.layers
    ]

    def reference(rows: np.ndarray) -> np.ndarray:
        return model(rows.astype(np.float32), training=False).numpy().reshape(-1).astype(np.float64)

    return weights, reference


def _tensorflow_fm(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, factors: int, epochs: int, seed: int, loss: str
) -> tuple[dict[str, Any], Callable[[np.ndarray], np.ndarray]]:
    """A second-order factorization machine as a Keras layer (`reward_models.FactorizationMachine`
    serves the same formula in numpy): its weights and TensorFlow's own prediction."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = require("tensorflow", "ml", "training an fm reward model")
    keras = require("tf_keras", "ml", "training an fm reward model")

    tf.keras.utils.set_random_seed(seed)
    width = x.shape[1]

    class Pairwise(keras.layers.Layer):  # type: ignore[misc,name-defined]
        def build(self, input_shape: Any) -> None:
            self.w0 = self.add_weight(name="w0", shape=(1,), initializer="zeros")
            self.w = self.add_weight(name="w", shape=(width, 1), initializer="zeros")
            self.v = self.add_weight(
                name="v", shape=(width, factors), initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed)
            )

        def call(self, rows: Any) -> Any:
            projected = tf.matmul(rows, self.v)
            squares = tf.matmul(rows * rows, self.v * self.v)
            pairwise = 0.5 * tf.reduce_sum(projected * projected - squares, axis=1, keepdims=True)
            return tf.sigmoid(self.w0 + tf.matmul(rows, self.w) + pairwise)

    layer = Pairwise()
    model = keras.Sequential([keras.layers.Input((width,)), layer])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    model.fit(
        x.astype(np.float32), y.astype(np.float32), sample_weight=weight.astype(np.float32),
        epochs=epochs, batch_size=256, verbose=0,
    )  # fmt: skip
    arrays = {
        "w0": layer.w0.numpy().astype(np.float64).reshape(()),
        "w": layer.w.numpy().astype(np.float64).reshape(-1),
        "v": layer.v.numpy().astype(np.float64),
    }

    def reference(rows: np.ndarray) -> np.ndarray:
        return model(rows.astype(np.float32), training=False).numpy().reshape(-1).astype(np.float64)

    return arrays, reference


def _ydf_trees(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, seed: int, directory: Path, regression: bool
) -> Callable[[np.ndarray], np.ndarray]:
    ydf = require("ydf", "ml", "training a gbt reward model")

    from tastemaker.bandits.reward_models import trees_click_probability

    names = feature_names()
    data: dict[str, np.ndarray] = {name: x[:, i].astype(np.float32) for i, name in enumerate(names)}
    data["label"] = y.astype(np.float32) if regression else np.where(y > 0.5, "click", "none")
    data["weight"] = weight.astype(np.float32)
    task = ydf.Task.REGRESSION if regression else ydf.Task.CLASSIFICATION
    learner = ydf.GradientBoostedTreesLearner(
        label="label", weights="weight", task=task, num_trees=100, max_depth=5, random_seed=seed
    )
    model = learner.train(data, verbose=0)
    model.save(str(directory / "ydf"))

    def reference(rows: np.ndarray) -> np.ndarray:
        return trees_click_probability(model, {n: rows[:, i].astype(np.float32) for i, n in enumerate(names)})

    return reference


def train_reward_model(
    kind: str,
    decisions: Sequence[records_pb2.RewardedDecision],
    out: Path,
    version: str | None = None,
    epochs: int = 5,
    seed: int = 0,
    ips_clip: float | None = None,
    extra_manifest: dict[str, Any] | None = None,
    targets: str = "ips",
    factors: int = 8,
) -> Trained:
    """`targets="ips"`: the shown items' clicks, each row weighted by min(1/propensity, ips_clip)
    (counterfactual training: the rows the logging policy rarely showed count as much as the ones
    it favoured; `ips_clip=None`: unweighted). `targets="dr"`: doubly robust pseudo-outcomes over
    shown and sampled unshown candidates (`dr_targets.py`, clipped at `ips_clip`), regressed on.
    `factors`: the factorization machine's k (kind "fm" only)."""
    if kind not in KINDS:
        raise ValueError(f"unknown reward model kind {kind!r}; known: {', '.join(KINDS)}")
    if targets not in TARGETS:
        raise ValueError(f"unknown training targets {targets!r}; known: {', '.join(TARGETS)}")
    if targets == "dr" and kind == "banditnet":
        raise ValueError("banditnet learns a policy from the logged propensities itself; use --targets ips")
    if not factors >= 1:
        raise ValueError(f"the factorization machine needs at least 1 factor, got {factors}")
    if ips_clip is not None and not ips_clip >= 1:
        raise ValueError(f"the IPS clip must be at least 1, got {ips_clip}")
    x, y, held, propensity = training_rows(decisions)
    if targets == "dr":
        from tastemaker.training.modeling.dr_targets import dr_rows

        rows = dr_rows(decisions, clip=ips_clip, seed=seed)
        train_x, train_y, train_w = rows.x[~rows.held], rows.target[~rows.held], rows.weight[~rows.held]
    else:
        weight = np.ones(len(y)) if ips_clip is None else np.minimum(1.0 / propensity, ips_clip)
        train_x, train_y, train_w = x[~held], y[~held], weight[~held]
    train_w = train_w / train_w.mean()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("weights.npz", "manifest.json"):
        (out / stale).unlink(missing_ok=True)
    version = version or f"{kind}-{time.strftime('%Y%m%dT%H%M%S')}"
    learned: dict[str, float] = {}
    if kind == "gbt":
        reference = _ydf_trees(train_x, train_y, train_w, seed, out, regression=targets == "dr")
    elif kind == "banditnet":
        from tastemaker.training.modeling.policy_learning import learn_policy

        theta, learned = learn_policy(decisions)
        np.savez(out / "weights.npz", w0=theta[:, None], b0=np.zeros(1))

        def reference(rows: np.ndarray) -> np.ndarray:
            return 1.0 / (1.0 + np.exp(-(rows @ theta)))
    elif kind == "fm":
        loss = "mean_squared_error" if targets == "dr" else "binary_crossentropy"
        fm_arrays, reference = _tensorflow_fm(train_x, train_y, train_w, factors, epochs, seed, loss)
        np.savez(out / "weights.npz", **fm_arrays)
    else:
        hidden = () if kind == "logistic" else (32, 16)
        loss = "mean_squared_error" if targets == "dr" else "binary_crossentropy"
        weights, reference = _tensorflow_dense(train_x, train_y, train_w, hidden, epochs, seed, loss)
        arrays: dict[str, Any] = {f"w{i}": w for i, (w, _) in enumerate(weights)}
        arrays.update({f"b{i}": b for i, (_, b) in enumerate(weights)})
        np.savez(out / "weights.npz", **arrays)
    metrics = {"rows": float(len(y)), "train_rows": float(len(train_y)), "positive_rate": float(y.mean()), **learned}
    if held.any():
        p = reference(x[held])
        metrics.update({"heldout_log_loss": log_loss(y[held], p), "heldout_auc": auc(y[held], p)})
    training = {"kind": kind, "epochs": epochs, "seed": seed, "ips_clip": ips_clip, "targets": targets}
    if kind == "fm":
        training["factors"] = factors
    write_manifest(out, kind, version, {"metrics": metrics, "training": training, **(extra_manifest or {})})
    return Trained(out, version, reference, metrics)
