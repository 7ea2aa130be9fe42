"""The chat head: what people send after a message, learned from (message, sticker) pairs.

The two towers (`encoder.py`) know stickers by their catalog phrases; the head knows them by the
messages people answered with them. It is a linear softmax over the stickers that occur in the
pairs, on hashed words, word bigrams and character 2-to-5-grams of the message (words that no
catalog phrase holds — "gn", "thx", "bahut bhook lagi" — and their spelling variants):

    p_head(s | text) = softmax(x(text) · W + b)_s,   x = the text's distinct features / √(their count)

Only features seen in at least two training messages have a row (`rows`, sorted; the rest weigh
nothing), so the head is as large as the chat it read, not as the hash space. The service blends
it with the encoder as a mixture of the two distributions (`blend`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tastemaker.stickers.checksummed import load_arrays, save_arrays
from tastemaker.stickers.text import MAX_MESSAGE_CHARS, normalise

FORMAT = "tastemaker.sticker-head/1"
HEAD_BUCKETS = 1 << 22
CHAR_NGRAMS = (2, 3, 4, 5)
#: the encoder's retrieval softmax over cosine similarities (`sticker_training.TEMPERATURE`)
ENCODER_TEMPERATURE = 0.05


def head_features(text: str) -> np.ndarray:
    """Distinct hashed ids in [0, HEAD_BUCKETS) of the text's words, word bigrams and character
    2-5-grams (within and across words, over " text "), sorted."""
    clean = normalise(text)[:MAX_MESSAGE_CHARS]
    if not clean:
        return np.zeros(0, dtype=np.int64)
    words = clean.split()
    grams = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    padded = f" {clean} "
    grams += [padded[i : i + n] for n in CHAR_NGRAMS for i in range(len(padded) - n + 1)]
    return np.unique(np.fromiter((zlib.crc32(g.encode("utf-8")) % HEAD_BUCKETS for g in grams), dtype=np.int64))


@dataclass(frozen=True)
class StickerHead:
    rows: np.ndarray  # (F,) int64, sorted: the feature ids the head has weights for
    weights: np.ndarray  # (F, L) float16: half the memory, and logits are summed in float32
    bias: np.ndarray  # (L,) float32
    labels: tuple[str, ...]  # the L sticker ids, in column order
    #: each label's share of the training pairs (what a message with no known feature gets)
    prior: np.ndarray  # (L,) float32
    #: sticker id → its column
    columns: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", {sticker_id: j for j, sticker_id in enumerate(self.labels)})

    def logits(self, texts: list[str]) -> np.ndarray:
        """(len(texts), L) logits."""
        out = np.tile(self.bias, (len(texts), 1)).astype(np.float32)
        for i, text in enumerate(texts):
            ids = head_features(text)
            if not len(ids):
                continue
            where = np.searchsorted(self.rows, ids)
            known = where[(where < len(self.rows)) & (self.rows[np.minimum(where, len(self.rows) - 1)] == ids)]
            out[i] += self.weights[known].sum(axis=0, dtype=np.float32) / np.sqrt(len(ids))
        return out

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """(len(texts), L) p_head(sticker | text)."""
        return softmax(self.logits(texts))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, L) logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(z)
    return exp / exp.sum(axis=1, keepdims=True)


def blend(
    similarity: np.ndarray,
    candidate_ids: tuple[str, ...],
    head: StickerHead | None,
    texts: list[str],
    weight: float,
    probabilities: np.ndarray | None = None,
) -> np.ndarray:
    """(n, C) log p(sticker | text) of C candidates for n texts, as a mixture

        p = (1 − weight) · softmax(similarity / τ) + weight · p_head

    the encoder's distribution over the candidates (τ its training temperature) and the head's
    (0 for a sticker that no pair holds). Without a head, or with weight 0: log of the encoder's.
    `probabilities`: the head's (n, L) for `texts` when already computed."""
    z = similarity / ENCODER_TEMPERATURE
    z = z - z.max(axis=1, keepdims=True)
    encoder = np.exp(z)
    encoder /= encoder.sum(axis=1, keepdims=True)
    if head is None or weight <= 0:
        return np.log(np.maximum(encoder, 1e-30))
    where = np.fromiter((head.columns.get(sid, -1) for sid in candidate_ids), dtype=np.int64, count=len(candidate_ids))
    learned = np.zeros_like(encoder)
    present = where >= 0
    if present.any():
        learned[:, present] = (head.probabilities(texts) if probabilities is None else probabilities)[:, where[present]]
    return np.log(np.maximum((1.0 - weight) * encoder + weight * learned, 1e-30))


_ARRAYS = ("rows", "weights", "bias", "prior")


def save_head(head: StickerHead, directory: Path, metrics: dict[str, float] | None = None) -> None:
    arrays = {name: getattr(head, name) for name in _ARRAYS if name != "weights"}
    manifest = {"format": FORMAT, "labels": list(head.labels), "metrics": metrics or {}}
    # the weights (features × stickers) are memory-mapped on load: one copy for every worker
    save_arrays(directory, "head", arrays, manifest, {"weights": head.weights.astype(np.float16)})


class HeadError(ValueError):
    pass


def load_head(directory: Path) -> StickerHead:
    manifest, arrays = load_arrays(directory, "head", FORMAT, "sticker head", HeadError)
    return StickerHead(labels=tuple(manifest["labels"]), **{name: arrays[name] for name in _ARRAYS})
