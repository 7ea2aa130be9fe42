"""Training the chat head (`stickers/head.py`) on (message, sticker) pairs with TensorFlow.

A multinomial logistic regression on the head's hashed features, trained with Adam on mini-batches
(lazy on the weight rows: only the rows a batch touches move). How many epochs: the loss on a
tenth of the pairs held out of training picks it (early stopping, `patience` epochs), then the
head is trained again on every pair for that many epochs — the held-out tenth is part of the
training pairs, never of any evaluation set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tastemaker.optional import require
from tastemaker.stickers.head import StickerHead, head_features
from tastemaker.training.progress import TrainingProgress


@dataclass(frozen=True)
class TrainedHead:
    head: StickerHead
    seconds: float
    epochs: int
    #: the held-out tenth's mean loss after each epoch of the first run
    held_out_losses: tuple[float, ...]


@dataclass(frozen=True)
class _Encoded:
    """Every message's known features as compressed rows: message i holds
    `local[indptr[i]:indptr[i + 1]]`, each scaled by `scale[i]` = 1/√(its feature count)."""

    indptr: np.ndarray  # (n + 1,) int64
    local: np.ndarray  # (nnz,) int32
    scale: np.ndarray  # (n,) float32

    @classmethod
    def of(cls, features: Sequence[np.ndarray], rows: np.ndarray) -> _Encoded:
        flat = np.concatenate(features) if features else np.zeros(0, np.int64)
        where = np.searchsorted(rows, flat)
        hit = (where < len(rows)) & (rows[np.minimum(where, max(len(rows) - 1, 0))] == flat) if len(rows) else where < 0
        owner = np.repeat(np.arange(len(features)), [len(f) for f in features])
        indptr = np.concatenate([[0], np.cumsum(np.bincount(owner[hit], minlength=len(features)))])
        scale = 1.0 / np.sqrt(np.maximum([len(f) for f in features], 1))
        return cls(indptr.astype(np.int64), where[hit].astype(np.int32), scale.astype(np.float32))

    def batch(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(local ids, the batch row of each, each batch row's scale) of the messages `part`."""
        starts, lengths = self.indptr[part], self.indptr[part + 1] - self.indptr[part]
        segment = np.repeat(np.arange(len(part), dtype=np.int32), lengths)
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths) + starts[segment]
        return self.local[offsets], segment, self.scale[part]


def train_head(
    texts: Sequence[str],
    sticker_ids: Sequence[str],
    weights: Sequence[float] | None = None,
    max_epochs: int = 30,
    patience: int = 2,
    batch_size: int = 1024,
    learning_rate: float = 0.02,
    min_count: int = 2,
    seed: int = 0,
    progress: TrainingProgress | None = None,
) -> TrainedHead:
    """The head over the distinct stickers of `sticker_ids`, from each text and the sticker sent
    with it (`weights`: each pair's weight, default 1)."""
    if len(texts) != len(sticker_ids) or not texts:
        raise ValueError("one sticker per text, and at least one pair")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = require("tensorflow", "ml", "training the sticker head")
    start = time.perf_counter()
    labels = tuple(sorted(set(sticker_ids)))
    column = {sid: j for j, sid in enumerate(labels)}
    targets = np.array([column[s] for s in sticker_ids], dtype=np.int32)
    weight = np.ones(len(texts), np.float32) if weights is None else np.asarray(weights, np.float32)
    features = [head_features(t) for t in texts]
    ids, counts = np.unique(np.concatenate(features), return_counts=True)
    rows = ids[counts >= min_count]
    encoded = _Encoded.of(features, rows)
    prior = (np.bincount(targets, weights=weight, minlength=len(labels)) / weight.sum()).astype(np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    held = order[: max(1, len(texts) // 10)] if len(texts) >= 20 else order[:0]
    fitted = order[len(held) :]

    def run(
        chosen: np.ndarray, epochs: int, watch: np.ndarray, meter: TrainingProgress
    ) -> tuple[Any, Any, list[float]]:
        tf.keras.utils.set_random_seed(seed)
        w = tf.Variable(tf.zeros((len(rows), len(labels))))
        b = tf.Variable(tf.math.log(tf.constant(np.maximum(prior, 1e-6))))
        from tastemaker.training.modeling.sticker_training import _LazyAdam

        optimizer = _LazyAdam(tf, [w, b], learning_rate)

        def logits(local: Any, segment: Any, scale: Any, count: Any) -> Any:
            gathered = tf.gather(w, local) * tf.gather(scale, segment)[:, None]
            return tf.math.unsorted_segment_sum(gathered, segment, count) + b

        spec = [tf.TensorSpec([None], tf.int32)] * 2 + [tf.TensorSpec([None], tf.float32)]
        spec += [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.float32)]

        @tf.function(input_signature=spec)  # type: ignore[misc]
        def step(local: Any, segment: Any, scale: Any, y: Any, pair_weight: Any) -> Any:
            with tf.GradientTape() as tape:
                z = logits(local, segment, scale, tf.shape(y)[0])
                per = tf.nn.sparse_softmax_cross_entropy_with_logits(y, z)
                loss = tf.reduce_sum(per * pair_weight) / tf.reduce_sum(pair_weight)
            optimizer.apply(tape.gradient(loss, [w, b]), [w, b])
            return loss

        watched = encoded.batch(watch) if len(watch) else None
        losses: list[float] = []
        for epoch in range(epochs):
            shuffled = np.random.default_rng([seed, epoch]).permutation(chosen)
            for n, begin in enumerate(range(0, len(shuffled), batch_size), 1):
                part = shuffled[begin : begin + batch_size]
                local, segment, scale = encoded.batch(part)
                loss = float(step(local, segment, scale, targets[part], weight[part]))
                meter.step(epoch, n, loss)
            if watched is not None:
                z = logits(*watched, len(watch)).numpy()
                z -= z.max(axis=1, keepdims=True)
                log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
                losses.append(float(-(log_p[np.arange(len(watch)), targets[watch]] * weight[watch]).sum()
                                    / weight[watch].sum()))  # fmt: skip
                meter.epoch(epoch, losses[-1])
                if len(losses) > patience and min(losses[-patience:]) >= min(losses[:-patience]):
                    break
        meter.close()
        return w, b, losses

    steps = -(-len(fitted) // batch_size)
    losses: list[float] = []
    epochs = max_epochs
    if len(held):
        _, _, losses = run(
            fitted, max_epochs, held, progress or TrainingProgress("sticker head: epochs", max_epochs, steps)
        )
        epochs = int(np.argmin(losses)) + 1
    every = np.arange(len(texts))
    w, b, _ = run(every, epochs, every[:0], progress or TrainingProgress("sticker head: final", epochs, steps))
    head = StickerHead(rows.astype(np.int64), w.numpy().astype(np.float16), b.numpy().astype(np.float32), labels, prior)
    return TrainedHead(head, time.perf_counter() - start, epochs, tuple(losses))
