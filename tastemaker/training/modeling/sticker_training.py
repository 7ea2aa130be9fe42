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

Cost. Each step pools the whole catalog through the shared 2^18-row text table (the exact softmax
needs every sticker's embedding) and the batch's messages. Both are written as gathers of only
the features present (no padding) and a segment sum, so the text table's gradient is sparse, and
the table's Adam update is lazy: only the rows a step touched move (their moments too), instead
of three dense passes over 2^18 × d floats. The default run on the CLDR catalog (1,642 stickers,
~274,000 pairs an epoch) takes about 3 minutes on 2 cores (`bench_stickers` prints it).

    tastemaker stickers train --catalog data/stickers/cldr-catalog.jsonl --out models/stickers
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.optional import require
from tastemaker.stickers.catalog import Sticker
from tastemaker.stickers.chat import chat_message
from tastemaker.stickers.encoder import STICKER_FEATURES, StickerEncoder, save_encoder, sticker_features
from tastemaker.stickers.text import BUCKETS, features
from tastemaker.training.modeling.sticker_logs import LoggedPair
from tastemaker.training.progress import TrainingProgress


def training_pairs(
    stickers: Sequence[Sticker], combined: int = 3, longest: int = 4, seed: int = 0, chatty: float = 0.5
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(query texts, sticker index, weight): every keyword, native and romanised, of every sticker,
    its emoji, and `combined` queries per language made of 2 to `longest` of its keywords in random
    order (messages are often several words, and a longer message must still pool to its meaning).
    A share `chatty` of those is written as chat (`stickers.chat.chat_message`: filler words,
    drifting romanised spellings, typos, an English keyword mixed in, the emoji), since users type
    chat, not catalog phrases.

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
        english = sticker.phrases["en"].keywords if "en" in sticker.phrases else ()
        if sticker.emoji:
            texts.append(sticker.emoji)
            targets.append(i)
            weights.append(1.0)
            single.append(False)
        for romanised, block in ((False, sticker.phrases), (True, sticker.romanised)):
            for language, phrases in block.items():
                keywords = phrases.keywords
                texts += keywords
                targets += [i] * len(keywords)
                weights += [1.0 / len(keywords)] * len(keywords)
                single += [True] * len(keywords)
                if len(keywords) >= 2:
                    for _ in range(combined):
                        size = int(rng.integers(2, min(longest, len(keywords)) + 1))
                        chosen = [keywords[c] for c in rng.choice(len(keywords), size, replace=False)]
                        if rng.random() < chatty:
                            text = chat_message(chosen, language, romanised, rng, english, sticker.emoji)
                        else:
                            text = " ".join(chosen)
                        texts.append(text)
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
    #: mean training loss of each epoch
    losses: tuple[float, ...] = ()


def flat_features(rows: Sequence[Sequence[int] | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Feature ids of several texts as one flat array and the row each belongs to (padding 0s
    dropped): the input of a gather + segment sum, which costs what the texts hold, not their
    padded width."""
    arrays = [np.asarray(r, dtype=np.int32) for r in rows]
    arrays = [a[a > 0] for a in arrays]
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int32)
    return flat.astype(np.int32), np.repeat(np.arange(len(arrays), dtype=np.int32), lengths)


class _LazyAdam:
    """Adam (Kingma & Ba) whose update of a sparse gradient touches only the rows it names: their
    moments and values (a row not in a step keeps its moments as they were, as TF-Addons' LazyAdam).
    Dense gradients get the usual update."""

    def __init__(self, tf: Any, variables: Sequence[Any], learning_rate: float, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7) -> None:  # fmt: skip
        self._tf = tf
        self.lr, self.b1, self.b2, self.eps = learning_rate, beta_1, beta_2, epsilon
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.t = tf.Variable(0.0, trainable=False)

    def apply(self, gradients: Sequence[Any], variables: Sequence[Any]) -> None:
        tf = self._tf
        self.t.assign_add(1.0)
        lr = self.lr * tf.sqrt(1.0 - self.b2**self.t) / (1.0 - self.b1**self.t)
        for g, var, m, v in zip(gradients, variables, self.m, self.v, strict=True):
            if isinstance(g, tf.IndexedSlices):
                # a row can come more than once (TensorFlow concatenates the slices of every use)
                rows, where = tf.unique(g.indices)
                values = tf.math.unsorted_segment_sum(g.values, where, tf.shape(rows)[0])
                m_rows = self.b1 * tf.gather(m, rows) + (1.0 - self.b1) * values
                v_rows = self.b2 * tf.gather(v, rows) + (1.0 - self.b2) * values * values
                m.scatter_update(tf.IndexedSlices(m_rows, rows))
                v.scatter_update(tf.IndexedSlices(v_rows, rows))
                var.scatter_sub(tf.IndexedSlices(lr * m_rows / (tf.sqrt(v_rows) + self.eps), rows))
            else:
                m.assign(self.b1 * m + (1.0 - self.b1) * g)
                v.assign(self.b2 * v + (1.0 - self.b2) * g * g)
                var.assign_sub(lr * m / (tf.sqrt(v) + self.eps))


def train_encoder(
    stickers: Sequence[Sticker],
    version: str | None = None,
    logged: Sequence[LoggedPair] = (),
    dim: int = 64,
    epochs: int = 6,
    batch_size: int = 8192,
    seed: int = 0,
    out: Path | None = None,
    id_dropout: float = 0.3,
    full_softmax_below: int = 20_000,
    hold_out_names: bool = False,
    learning_rate: float = 0.02,
    feature_width: int = STICKER_FEATURES,
    progress: TrainingProgress | None = None,
) -> TrainedEncoder:
    """`logged`: (message, sent sticker, weight) pairs from the service's own logs
    (`sticker_logs.logged_pairs`), added to the catalog's pairs (weight 1) with their
    inverse-propensity weights on the retrieval loss. Catalogs of up to `full_softmax_below`
    stickers train against every sticker as a negative (an exact softmax); larger ones against the
    batch's other stickers with the logQ correction (Yi et al., RecSys 2019), through TFRS's
    retrieval task. `hold_out_names`: the sticker tower does not read the names either (for
    evaluating on them as unseen queries). `progress`: default a bar on a terminal, log lines
    elsewhere."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = require("tensorflow", "ml", "training the sticker encoder")
    tfrs = require("tensorflow_recommenders", "ml", "training the sticker encoder")

    tf.keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    data = _TrainingPairs(stickers, logged, seed, feature_width, hold_out_names)
    n = len(stickers)
    full_softmax = n <= full_softmax_below
    catalog_flat, catalog_row_ids = flat_features(data.sticker_rows)
    towers = _towers(tf, tfrs, n, dim, seed)
    train_step = _train_step(tf, towers, learning_rate, full_softmax, tf.constant(catalog_row_ids), n)
    losses, n_pairs = _run_epochs(
        data, train_step, epochs, batch_size, seed, id_dropout, full_softmax, catalog_flat, progress
    )
    encoder = StickerEncoder(
        version=version or f"stickers-{time.strftime('%Y%m%dT%H%M%S')}",
        text_table=towers.text_table.numpy(),
        text_weight=towers.text_weight.numpy(),
        message_w=towers.message_w.numpy(),
        message_b=towers.message_b.numpy(),
        sticker_table=towers.sticker_table.numpy(),
        sticker_w=towers.sticker_w.numpy(),
        sticker_b=towers.sticker_b.numpy(),
        trained_ids=tuple(s.sticker_id for s in stickers),
        names=not hold_out_names,
        feature_width=feature_width,
    )

    def reference(messages: list[str]) -> np.ndarray:
        flat, rows = flat_features([features(m) for m in messages])
        touched = np.unique(flat)
        local = np.searchsorted(touched, flat).astype(np.int32)
        return np.asarray(towers.message(tf.constant(touched), tf.constant(local), tf.constant(rows), len(messages)))

    seconds = time.perf_counter() - start
    if out is not None:
        save_encoder(
            encoder, out,
            {"pairs": float(n_pairs), "logged_pairs": float(len(data.known)), "train_seconds": seconds,
             "final_loss": losses[-1] if losses else float("nan")},
        )  # fmt: skip
    return TrainedEncoder(encoder, reference, seconds, n_pairs, len(data.known), tuple(losses))


class _TrainingPairs:
    """The (text, sticker, weight) pairs of each epoch, and every text's features, cached."""

    def __init__(
        self,
        stickers: Sequence[Sticker],
        logged: Sequence[LoggedPair],
        seed: int,
        feature_width: int,
        hold_out_names: bool,
    ) -> None:
        self.stickers = stickers
        self.seed = seed
        self.index = {s.sticker_id: i for i, s in enumerate(stickers)}
        self.known = [p for p in logged if p.sticker_id in self.index]
        self.sticker_rows = [sticker_features(s, feature_width, names=not hold_out_names) for s in stickers]
        self._cache: dict[str, list[int]] = {}

    def text_ids(self, text: str) -> list[int]:
        ids = self._cache.get(text)
        if ids is None:
            ids = self._cache[text] = features(text)
        return ids

    def epoch(self, epoch: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """One epoch's (texts, sticker index, weight): the keyword combinations are drawn afresh each
        epoch, so training sees many of a sticker's keyword subsets (the names users type are such
        subsets), at the cost of one epoch's pairs. Texts without a feature are left out (served,
        they map to the zero vector and are refused)."""
        texts, targets, weights = training_pairs(self.stickers, seed=self.seed + epoch)
        texts += [p.message for p in self.known]
        targets = np.append(targets, [self.index[p.sticker_id] for p in self.known]).astype(np.int32)
        weights = np.append(weights, [p.weight for p in self.known]).astype(np.float32)
        keep = np.array([bool(self.text_ids(t)) for t in texts], dtype=bool)
        return [t for t, k in zip(texts, keep, strict=True) if k], targets[keep], weights[keep]


def _towers(tf: Any, tfrs: Any, n: int, dim: int, seed: int) -> Any:
    """The message tower (pooled hashed features, a dense layer) and the sticker tower (its
    phrases' pooled features plus an id row; row n is the "new sticker"), as TensorFlow variables."""
    uniform = tf.keras.initializers.RandomUniform(-0.05, 0.05, seed=seed)  # Keras' Embedding default
    glorot = tf.keras.initializers.GlorotUniform(seed=seed)

    class Towers(tf.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.text_table = tf.Variable(uniform((BUCKETS, dim)))
            self.text_weight = tf.Variable(tf.zeros(BUCKETS))  # softplus(0): every feature weighs alike at first
            self.message_w = tf.Variable(glorot((dim, dim)))
            self.message_b = tf.Variable(tf.zeros(dim))
            self.sticker_table = tf.Variable(uniform((n + 1, dim)))
            self.sticker_w = tf.Variable(glorot((dim, dim)))
            self.sticker_b = tf.Variable(tf.zeros(dim))
            self.task = tfrs.tasks.Retrieval(temperature=TEMPERATURE, remove_accidental_hits=True)
            self.trained = [self.text_table, self.text_weight, self.message_w, self.message_b,
                            self.sticker_table, self.sticker_w, self.sticker_b]  # fmt: skip

        def touch(self, touched: Any) -> tuple[Any, Any]:
            """The table rows and pooling weights of the distinct features `touched` (gathered once:
            their gradients then name each row once)."""
            return tf.gather(self.text_table, touched), tf.math.softplus(tf.gather(self.text_weight, touched))

        @staticmethod
        def pool(rows_and_weights: tuple[Any, Any], local: Any, rows: Any, count: Any) -> Any:
            """Σ softplus(a[i]) T[i] / Σ softplus(a[i]) per row (`encoder._pool`), `local` indexing
            the touched features."""
            table, weight = rows_and_weights
            w = tf.gather(weight, local)
            total = tf.math.unsorted_segment_sum(tf.gather(table, local) * w[:, None], rows, count)
            return total / tf.maximum(tf.math.unsorted_segment_sum(w, rows, count)[:, None], 1e-9)

        def message(self, touched: Any, local: Any, rows: Any, count: Any) -> Any:
            pooled = self.pool(self.touch(touched), local, rows, count)
            return tf.math.l2_normalize(pooled @ self.message_w + self.message_b, axis=-1)

        def sticker(self, text: Any, id_rows: Any) -> Any:
            pooled = text + tf.gather(self.sticker_table, id_rows)
            return tf.math.l2_normalize(pooled @ self.sticker_w + self.sticker_b, axis=-1)

    return Towers()


def _train_step(tf: Any, towers: Any, learning_rate: float, full_softmax: bool, catalog_rows: Any, n: int) -> Any:
    """The compiled training step over `towers`, with its own (lazy) Adam."""
    variables = towers.trained
    optimizer = _LazyAdam(tf, variables, learning_rate)
    every_row = tf.range(n)
    signature = [tf.TensorSpec([None], tf.int32)] * 7 + [tf.TensorSpec([None], tf.float32)] * 2

    @tf.function(input_signature=signature)  # type: ignore[misc]
    def train_step(
        touched: Any, local: Any, rows: Any, targets: Any, id_rows: Any, catalog_local: Any, batch_local: Any,
        weight: Any, q: Any,
    ) -> Any:  # fmt: skip
        """One step. `touched`: the distinct text features of the step (the messages' and the
        stickers'); `local`, `catalog_local`, `batch_local` index them. Full softmax: each query
        against its positive (through the "new sticker" row when its id was dropped) and every
        other sticker of the catalog. Otherwise in-batch negatives with the logQ correction;
        `batch_local` then holds the positives' features (their rows: their order in the batch,
        packed in `id_rows`' second half)."""
        count = tf.shape(targets)[0]
        with tf.GradientTape() as tape:
            gathered = towers.touch(touched)
            pooled = towers.pool(gathered, local, rows, count)
            queries = tf.math.l2_normalize(pooled @ towers.message_w + towers.message_b, axis=-1)
            if full_softmax:
                text = towers.pool(gathered, catalog_local, catalog_rows, n)
                positives = towers.sticker(tf.gather(text, targets), id_rows)
                catalog = towers.sticker(text, every_row)
                own = tf.reduce_sum(queries * positives, axis=-1, keepdims=True)
                others = tf.matmul(queries, catalog, transpose_b=True)
                # the positive's catalog column is not its own negative (an accidental hit)
                others = tf.where(tf.one_hot(targets, n, on_value=True, off_value=False), -1e9, others)
                logits = tf.concat([own, others], axis=1) / TEMPERATURE
                per_pair = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.zeros_like(targets), logits)
                loss = tf.reduce_sum(per_pair * weight) / tf.cast(count, tf.float32)
            else:
                text = towers.pool(gathered, batch_local, id_rows[count:], count)
                positives = towers.sticker(text, id_rows[:count])
                loss = towers.task(
                    queries, positives, sample_weight=weight, candidate_sampling_probability=q,
                    candidate_ids=targets, compute_metrics=False,
                )  # fmt: skip
        gradients = tape.gradient(loss, variables)
        optimizer.apply(gradients, variables)
        return loss

    return train_step


def _run_epochs(
    data: _TrainingPairs,
    train_step: Any,
    epochs: int,
    batch_size: int,
    seed: int,
    id_dropout: float,
    full_softmax: bool,
    catalog_flat: np.ndarray,
    progress: TrainingProgress | None,
) -> tuple[list[float], int]:
    """Every epoch's steps; returns each epoch's mean loss and the number of pairs of an epoch."""
    n = len(data.stickers)
    texts, targets, weights = data.epoch(0)
    steps = -(-len(texts) // batch_size)
    meter = progress or TrainingProgress("training stickers", epochs, steps)
    losses: list[float] = []
    # the next epoch's pairs and their features are Python work: done in a thread while TensorFlow
    # runs this epoch's steps (which release the GIL)
    ahead = ThreadPoolExecutor(1, thread_name_prefix="sticker-pairs")
    upcoming = ahead.submit(data.epoch, 1) if epochs > 1 else None
    for epoch in range(epochs):
        if epoch and upcoming is not None:
            texts, targets, weights = upcoming.result()
            upcoming = ahead.submit(data.epoch, epoch + 1) if epoch + 1 < epochs else None
        rng = np.random.default_rng([seed, epoch])
        # id dropout: a share of the pairs see the sticker through the "new sticker" row, so the
        # tower also learns to embed a sticker from its phrases alone (stickers added after training)
        id_rows = np.where(rng.random(len(targets)) < id_dropout, n, targets).astype(np.int32)
        sampling = (np.bincount(targets, minlength=n) / len(targets))[targets].astype(np.float32)
        order = rng.permutation(len(texts))
        total = 0.0
        for step, begin in enumerate(range(0, len(order), batch_size), 1):
            chosen = order[begin : begin + batch_size]
            flat, rows = flat_features([data.text_ids(texts[i]) for i in chosen])
            positive_ids, sticker_flat = id_rows[chosen], catalog_flat
            if not full_softmax:
                sticker_flat, positive_rows = flat_features([data.sticker_rows[t] for t in targets[chosen]])
                positive_ids = np.concatenate([positive_ids, positive_rows])
            touched = np.unique(np.concatenate([flat, sticker_flat]))
            local, sticker_local = np.searchsorted(touched, flat), np.searchsorted(touched, sticker_flat)
            loss = float(
                train_step(
                    touched, local.astype(np.int32), rows, targets[chosen], positive_ids,
                    sticker_local.astype(np.int32), sticker_local.astype(np.int32), weights[chosen], sampling[chosen],
                )
            )  # fmt: skip
            total += loss * len(chosen)
            meter.step(epoch, step, loss)
        losses.append(total / len(order))
        meter.epoch(epoch, losses[-1])
    meter.close()
    ahead.shutdown()
    return losses, len(targets)


#: the retrieval softmax's temperature over cosine similarities
TEMPERATURE = 0.05
