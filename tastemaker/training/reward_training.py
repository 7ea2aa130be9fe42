"""Batch training of the home reward models from rewarded decisions: logistic regression and a
deep network in TensorFlow (exported as numpy weights), gradient-boosted trees with YDF.

Rows: every shown shelf (label: a click anywhere in its row) and every shown card (label: a click
on it), with the features `reward_features.encode` builds from what the decision logged. A fifth
of the decisions (by a hash of the decision id) is held out for the log loss and AUC written to
the manifest.

    tastemaker train reward-model --kind logistic|dnn|gbt --logs rewarded.parquet --out models/rm-1
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.bandits.reward_features import encode, feature_names, logged_inputs
from tastemaker.bandits.reward_models import KINDS, write_manifest
from tastemaker.v1 import records_pb2


def training_rows(
    decisions: Sequence[records_pb2.RewardedDecision],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, held_out, propensity) over every shown shelf and card of the home decisions; a card's
    propensity is its shelf's times its own."""
    blocks: list[np.ndarray] = []
    labels: list[float] = []
    held: list[bool] = []
    propensities: list[float] = []
    for rewarded in decisions:
        decision = rewarded.decision
        if decision.surface != "home" or not decision.shown:
            continue
        values, counts, context, hold = logged_inputs(decision)
        clicked = {o.item_id for o in rewarded.outcomes if o.reward > 0}

        shelves = list(decision.shown)
        groups = [
            (
                [s.shelf_id for s in shelves],
                "shelf",
                [s.position for s in shelves],
                [float(s.shelf_id in clicked or any(c.card_id in clicked for c in s.cards)) for s in shelves],
                [s.propensity for s in shelves],
            )
        ]
        groups += [
            ([c.card_id for c in s.cards], "card", [c.position for c in s.cards],
             [float(c.card_id in clicked) for c in s.cards], [s.propensity * c.propensity for c in s.cards])
            for s in shelves
            if s.cards
        ]  # fmt: skip
        for ids, level, positions, row_labels, row_propensities in groups:
            propensities.extend(row_propensities)
            engagement = np.array([values.get(f"{level}:{i}", 0.0) for i in ids])
            blocks.append(encode(counts, engagement, ids, level, context, np.array(positions)))
            labels.extend(row_labels)
            held.extend([hold] * len(ids))
    if not blocks:
        raise ValueError("no shown home items to train on")
    return np.vstack(blocks), np.array(labels), np.array(held, dtype=bool), np.array(propensities)


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


@dataclass(frozen=True)
class Trained:
    directory: Path
    version: str
    #: the training framework's own prediction (TensorFlow or YDF), to check the served one against
    reference: Callable[[np.ndarray], np.ndarray]
    metrics: dict[str, float]


def _tensorflow_dense(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, hidden: Sequence[int], epochs: int, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], Callable[[np.ndarray], np.ndarray]]:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # type: ignore[import-not-found]
    import tf_keras as keras  # type: ignore[import-not-found]

    tf.keras.utils.set_random_seed(seed)
    layers: list[Any] = [keras.layers.Input((x.shape[1],))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
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


def _ydf_trees(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, seed: int, directory: Path
) -> Callable[[np.ndarray], np.ndarray]:
    import ydf  # type: ignore[import-not-found]

    names = feature_names()
    data: dict[str, np.ndarray] = {name: x[:, i].astype(np.float32) for i, name in enumerate(names)}
    data["label"] = np.where(y > 0.5, "click", "none")
    data["weight"] = weight.astype(np.float32)
    learner = ydf.GradientBoostedTreesLearner(
        label="label", weights="weight", task=ydf.Task.CLASSIFICATION, num_trees=100, max_depth=5, random_seed=seed
    )
    model = learner.train(data, verbose=0)
    model.save(str(directory / "ydf"))

    def reference(rows: np.ndarray) -> np.ndarray:
        p = np.asarray(model.predict({n: rows[:, i].astype(np.float32) for i, n in enumerate(names)}))
        # YDF gives P(the second class) for binary tasks; make it P(click)
        return p.reshape(-1) if list(model.label_classes())[1] == "click" else 1.0 - p.reshape(-1)

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
) -> Trained:
    """`ips_clip`: weight each row by min(1/propensity, clip) (counterfactual training: the rows
    the logging policy rarely showed count as much as the ones it favoured); None: unweighted."""
    if kind not in KINDS:
        raise ValueError(f"unknown reward model kind {kind!r}; known: {', '.join(KINDS)}")
    if ips_clip is not None and not ips_clip >= 1:
        raise ValueError(f"the IPS clip must be at least 1, got {ips_clip}")
    x, y, held, propensity = training_rows(decisions)
    weight = np.ones(len(y)) if ips_clip is None else np.minimum(1.0 / propensity, ips_clip)
    weight = weight / weight.mean()
    train_x, train_y, train_w = x[~held], y[~held], weight[~held]
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("weights.npz", "manifest.json"):
        (out / stale).unlink(missing_ok=True)
    version = version or f"{kind}-{time.strftime('%Y%m%dT%H%M%S')}"
    learned: dict[str, float] = {}
    if kind == "gbt":
        reference = _ydf_trees(train_x, train_y, train_w, seed, out)
    elif kind == "banditnet":
        from tastemaker.training.policy_learning import learn_policy

        theta, learned = learn_policy(decisions)
        np.savez(out / "weights.npz", w0=theta[:, None], b0=np.zeros(1))

        def reference(rows: np.ndarray) -> np.ndarray:
            return 1.0 / (1.0 + np.exp(-(rows @ theta)))
    else:
        hidden = () if kind == "logistic" else (32, 16)
        weights, reference = _tensorflow_dense(train_x, train_y, train_w, hidden, epochs, seed)
        arrays: dict[str, Any] = {f"w{i}": w for i, (w, _) in enumerate(weights)}
        arrays.update({f"b{i}": b for i, (_, b) in enumerate(weights)})
        np.savez(out / "weights.npz", **arrays)
    metrics = {"rows": float(len(y)), "train_rows": float(len(train_y)), "positive_rate": float(y.mean()), **learned}
    if held.any():
        p = reference(x[held])
        metrics.update({"heldout_log_loss": log_loss(y[held], p), "heldout_auc": auc(y[held], p)})
    training = {"kind": kind, "epochs": epochs, "seed": seed, "ips_clip": ips_clip}
    write_manifest(out, kind, version, {"metrics": metrics, "training": training, **(extra_manifest or {})})
    return Trained(out, version, reference, metrics)
