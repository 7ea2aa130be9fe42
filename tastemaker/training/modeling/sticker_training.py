"""Training the message-to-sticker two-tower model with TensorFlow Recommenders.

Training pairs: (a keyword of a sticker, the sticker) in every language, and the romanised
keywords of the Indic ones, each weighted 1/(the sticker's keywords in that language), plus
combinations of 2 to 4 of a sticker's keywords drawn afresh each epoch; optionally logged
(message, sent sticker) pairs. The CLDR short names (`tts`) and their romanised forms are not
trained on as names: they are the held-out queries of the quality benchmark. CLDR often repeats a
name as one of the keywords, though (most Indic stickers' only keyword is their name), so
`bench_stickers` also scores the names that are no keyword apart. Loss: `tfrs.tasks.Retrieval`
(in-batch softmax over unit vectors, temperature 0.05). The towers are exported as numpy arrays
(`stickers/encoder.py`); a test checks the served embeddings equal the TensorFlow model's.

    tastemaker stickers train --catalog data/stickers/cldr-catalog.jsonl --out models/stickers
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.optional import require
from tastemaker.stickers.catalog import Sticker
from tastemaker.stickers.encoder import StickerEncoder, save_encoder, sticker_features
from tastemaker.stickers.text import BUCKETS, batch
from tastemaker.training.modeling.sticker_logs import LoggedPair


def training_pairs(
    stickers: Sequence[Sticker], combined: int = 3, longest: int = 4, seed: int = 0
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(query texts, sticker index, weight): every keyword, native and romanised, of every sticker,
    and `combined` queries per language made of 2 to `longest` of its keywords in random order
    (messages are often several words, and a longer message must still pool to its meaning).

    A single keyword weighs 1/K for a sticker with K keywords in that language and script — one
    draw among them, as a user who means the sticker types one of its keywords — so a keyword
    shared by several stickers ("alien") points most to the one it describes most specifically,
    and every sticker weighs the same. These weights are scaled to mean 1; combinations weigh 1."""
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    targets: list[int] = []
    weights: list[float] = []
    single: list[bool] = []
    for i, sticker in enumerate(stickers):
        for block in (sticker.phrases, sticker.romanised):
            for phrases in block.values():
                keywords = phrases.keywords
                texts += keywords
                targets += [i] * len(keywords)
                weights += [1.0 / len(keywords)] * len(keywords)
                single += [True] * len(keywords)
                if len(keywords) >= 2:
                    for _ in range(combined):
                        size = int(rng.integers(2, min(longest, len(keywords)) + 1))
                        chosen = rng.choice(len(keywords), size, replace=False)
                        texts.append(" ".join(keywords[c] for c in chosen))
                        targets.append(i)
                        weights.append(1.0)
                        single.append(False)
    weight, is_single = np.array(weights, dtype=np.float32), np.array(single, dtype=bool)
    if is_single.any():
        weight[is_single] /= weight[is_single].mean()
    return texts, np.array(targets, dtype=np.int32), weight


@dataclass(frozen=True)
class TrainedEncoder:
    encoder: StickerEncoder
    #: TensorFlow's own message embedding, to check the served one against
    reference: Callable[[list[str]], np.ndarray]
    seconds: float
    #: pairs per epoch
    pairs: int
    #: of which from the logs
    logged_pairs: int = 0


def train_encoder(
    stickers: Sequence[Sticker],
    version: str | None = None,
    logged: Sequence[LoggedPair] = (),
    dim: int = 128,
    epochs: int = 12,
    batch_size: int = 2048,
    seed: int = 0,
    out: Path | None = None,
    id_dropout: float = 0.3,
    full_softmax_below: int = 20_000,
    hold_out_names: bool = False,
) -> TrainedEncoder:
    """`logged`: (message, sent sticker, weight) pairs from the service's own logs
    (`sticker_logs.logged_pairs`), added to the catalog's pairs (weight 1) with their
    inverse-propensity weights on the retrieval loss. Catalogs of up to `full_softmax_below`
    stickers train against every sticker as a negative (an exact softmax); larger ones against the
    batch's other stickers with the logQ correction (Yi et al., RecSys 2019). `hold_out_names`: the
    sticker tower does not read the names either (for evaluating on them as unseen queries)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = require("tensorflow", "ml", "training the sticker encoder")
    tfrs = require("tensorflow_recommenders", "ml", "training the sticker encoder")
    keras = require("tf_keras", "ml", "training the sticker encoder")

    tf.keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    index = {s.sticker_id: i for i, s in enumerate(stickers)}
    known = [p for p in logged if p.sticker_id in index]

    def pairs(epoch: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """One epoch's (texts, sticker index, weight): the keyword combinations are drawn afresh each
        epoch, so training sees many of a sticker's keyword subsets (the names users type are such
        subsets), at the cost of one epoch's pairs."""
        texts, targets, weights = training_pairs(stickers, seed=seed + epoch)
        texts += [p.message for p in known]
        targets = np.append(targets, [index[p.sticker_id] for p in known]).astype(np.int32)
        weights = np.append(weights, [p.weight for p in known]).astype(np.float32)
        return texts, targets, weights

    texts, targets, weights = pairs(0)
    sticker_ngrams = np.stack([sticker_features(s, names=not hold_out_names) for s in stickers])
    n = len(stickers)
    full_softmax = n <= full_softmax_below

    def pool(embedded: Any, weights: Any, ids: Any) -> Any:
        w = tf.math.softplus(weights) * tf.cast(ids > 0, tf.float32)
        return tf.reduce_sum(embedded * w[..., None], axis=-2) / tf.maximum(
            tf.reduce_sum(w, axis=-1, keepdims=True), 1e-9
        )

    class TwoTower(tfrs.Model):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.text_table = keras.layers.Embedding(BUCKETS, dim)
            self.text_weight = keras.layers.Embedding(BUCKETS, 1, embeddings_initializer="zeros")
            self.message_dense = keras.layers.Dense(dim)
            self.sticker_table = keras.layers.Embedding(n + 1, dim)
            self.sticker_dense = keras.layers.Dense(dim)
            self.ngrams = tf.constant(sticker_ngrams)
            # the same sticker twice among the candidates is not its own negative (accidental hits)
            self.task = tfrs.tasks.Retrieval(temperature=0.05, remove_accidental_hits=True)
            self.every_row = tf.range(n)
            # the catalog's features as a sparse (n, BUCKETS) 0/1 matrix: one product pools them all
            r, c = np.nonzero(sticker_ngrams)
            self.catalog_features = tf.sparse.reorder(
                tf.SparseTensor(np.stack([r, sticker_ngrams[r, c]], axis=1).astype(np.int64),
                                tf.ones(len(r), tf.float32), (n, BUCKETS))
            )  # fmt: skip

        def message(self, ids: Any) -> Any:
            pooled = pool(self.text_table(ids), self.text_weight(ids)[..., 0], ids)
            return tf.math.l2_normalize(self.message_dense(pooled), axis=-1)

        def sticker(self, rows: Any, id_rows: Any) -> Any:
            grams = tf.gather(self.ngrams, rows)
            pooled = self.sticker_table(id_rows) + pool(self.text_table(grams), self.text_weight(grams)[..., 0], grams)
            return tf.math.l2_normalize(self.sticker_dense(pooled), axis=-1)

        def pooled_catalog(self) -> Any:
            """pool() of every sticker's features at once, the same numbers as `sticker`'s."""
            w = tf.math.softplus(self.text_weight.embeddings[:, 0])
            total = tf.sparse.sparse_dense_matmul(self.catalog_features, self.text_table.embeddings * w[:, None])
            return total / tf.maximum(tf.sparse.sparse_dense_matmul(self.catalog_features, w[:, None]), 1e-9)

        def compute_loss(self, features: dict[str, Any], training: bool = False) -> Any:
            queries = self.message(features["query"])
            if full_softmax:
                # every sticker is a negative: the positives (the diagonal) then the whole catalog
                pooled = self.pooled_catalog()

                def tower(text: Any, id_rows: Any) -> Any:
                    return tf.math.l2_normalize(self.sticker_dense(text + self.sticker_table(id_rows)), axis=-1)

                positives = tower(tf.gather(pooled, features["sticker"]), features["id_row"])
                catalog = tower(pooled, self.every_row)
                return self.task(
                    queries, tf.concat([positives, catalog], axis=0), sample_weight=features["weight"],
                    candidate_ids=tf.concat([features["sticker"], self.every_row], axis=0),
                )  # fmt: skip
            # in-batch negatives, frequent stickers not over-penalised (logQ correction)
            positives = self.sticker(features["sticker"], features["id_row"])
            return self.task(
                queries, positives, sample_weight=features["weight"], candidate_sampling_probability=features["q"],
                candidate_ids=features["sticker"],
            )  # fmt: skip

    model = TwoTower()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    for epoch in range(epochs):
        if epoch:
            texts, targets, weights = pairs(epoch)
        # id dropout: a share of the pairs see the sticker through the "new sticker" row, so the
        # tower also learns to embed a sticker from its phrases alone (stickers added after training)
        sampling = (np.bincount(targets, minlength=n) / len(targets))[targets].astype(np.float32)
        dropped = np.random.default_rng([seed, epoch]).random(len(targets)) < id_dropout
        id_rows = np.where(dropped, n, targets).astype(np.int32)
        data = (
            tf.data.Dataset.from_tensor_slices(
                {"query": batch(texts), "sticker": targets, "id_row": id_rows, "weight": weights, "q": sampling}
            )
            .shuffle(len(targets), seed=seed + epoch)
            .batch(batch_size)
        )
        model.fit(data, epochs=1, verbose=0)

    encoder = StickerEncoder(
        version=version or f"stickers-{time.strftime('%Y%m%dT%H%M%S')}",
        text_table=model.text_table.embeddings.numpy(),
        text_weight=model.text_weight.embeddings.numpy()[:, 0],
        message_w=model.message_dense.kernel.numpy(),
        message_b=model.message_dense.bias.numpy(),
        sticker_table=model.sticker_table.embeddings.numpy(),
        sticker_w=model.sticker_dense.kernel.numpy(),
        sticker_b=model.sticker_dense.bias.numpy(),
        trained_ids=tuple(s.sticker_id for s in stickers),
        names=not hold_out_names,
    )

    def reference(messages: list[str]) -> np.ndarray:
        return np.asarray(model.message(tf.constant(batch(messages))))

    seconds = time.perf_counter() - start
    if out is not None:
        save_encoder(
            encoder, out, {"pairs": float(len(targets)), "logged_pairs": float(len(known)), "train_seconds": seconds}
        )
    return TrainedEncoder(encoder, reference, seconds, len(targets), len(known))
