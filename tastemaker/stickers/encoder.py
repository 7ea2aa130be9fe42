"""The message and sticker towers as served: numpy only (no TensorFlow in the serving process).

message(text) = normalise(W_m · pool(ids(text)) + b_m)
sticker(s)    = normalise(W_s · (E[s] + pool(ids(phrases of s))) + b_s)
pool(ids)     = Σ softplus(a[i]) T[i] / Σ softplus(a[i])   (a learned weight per feature, like IDF)

T is the hashed sub-word table shared by both towers (`text.py`), E the sticker-id table (its last
row stands for a sticker added after training: such a sticker is embedded from its phrases alone,
no retrain needed). Written by `training/modeling/sticker_training.py` as `encoder.npz` + `manifest.json`
(SHA-256 of the weights checked on load).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tastemaker.stickers.catalog import Sticker
from tastemaker.stickers.checksummed import load_arrays, save_arrays
from tastemaker.stickers.text import batch, features, normalise

#: /2: words before n-grams in `text.features`, and the sticker features below; /3: 2^18 hash
#: buckets instead of 2^15 (the catalog's ~338,000 distinct words and n-grams shared ~10 to a
#: bucket). Retrain older bundles.
#: /4: the sticker's emoji is one of its phrases (a message with the emoji in it matches it). Retrain older bundles.
FORMAT = "tastemaker.sticker-encoder/4"
#: a sticker's features at most (the manifest's `sticker_features`; bundles without it used 1024).
#: The catalog is pooled at every training step, so this sets much of the training cost; 128 keeps
#: the whole words of most CLDR stickers (median 111 distinct words) and held the quality table
STICKER_FEATURES = 128


def sticker_text(sticker: Sticker, names: bool = True) -> list[str]:
    """Every phrase a sticker is known by: names (unless `names` is False: a model evaluated on the
    names as held-out queries must not read them) and keywords in every language, and romanised,
    and the emoji itself."""
    out = [sticker.emoji] if sticker.emoji else []
    for block in (sticker.phrases, sticker.romanised):
        for phrases in block.values():
            if names:
                out.append(phrases.name)
            out.extend(phrases.keywords)
    return out


def sticker_features(sticker: Sticker, width: int = STICKER_FEATURES, names: bool = True) -> np.ndarray:
    """The sticker's distinct feature ids, at most `width`: every phrase's whole words first, then
    the phrases' n-grams taken in turn (one from each phrase, then the next), so that when a
    sticker has more than `width` features every language and script keeps a share."""
    text = sticker_text(sticker, names)
    per_phrase = [features(phrase) for phrase in text]
    words = [f[: len(normalise(p).split())] for f, p in zip(per_phrase, text, strict=True)]
    grams = [f[len(w) :] for f, w in zip(per_phrase, words, strict=True)]
    ordered = [i for w in words for i in w]
    longest = max((len(g) for g in grams), default=0)
    ordered += [g[k] for k in range(longest) for g in grams if k < len(g)]
    ids: list[int] = []
    seen: set[int] = set()
    for i in ordered:
        if i not in seen:
            seen.add(i)
            ids.append(i)
    row = np.zeros(width, dtype=np.int32)
    row[: min(width, len(ids))] = ids[:width]
    return row


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _pool(table: np.ndarray, weight: np.ndarray, ids: np.ndarray) -> np.ndarray:
    w = np.logaddexp(0.0, weight[ids]) * (ids > 0)  # softplus, 0 on padding
    return (table[ids] * w[..., None]).sum(axis=-2) / np.maximum(w.sum(axis=-1, keepdims=True), 1e-9)


@dataclass(frozen=True)
class StickerEncoder:
    version: str
    text_table: np.ndarray  # (BUCKETS, d); served float16, memory-mapped (`save_encoder`)
    text_weight: np.ndarray  # (BUCKETS,): each feature's pooling weight, before softplus
    message_w: np.ndarray  # (d, e)
    message_b: np.ndarray  # (e,)
    sticker_table: np.ndarray  # (n_trained + 1, d); the last row: stickers added after training
    sticker_w: np.ndarray
    sticker_b: np.ndarray
    trained_ids: tuple[str, ...]
    #: whether the sticker tower reads the stickers' names (False: trained with the names held out)
    names: bool = True
    #: how many of a sticker's features the sticker tower reads (`sticker_features`)
    feature_width: int = STICKER_FEATURES

    def messages(self, texts: list[str]) -> np.ndarray:
        """(len(texts), e) unit vectors; a text with no features maps to the zero vector."""
        ids = batch(texts)
        pooled = _pool(self.text_table, self.text_weight, ids)
        out = _normalise(pooled @ self.message_w + self.message_b)
        out[~(ids > 0).any(axis=1)] = 0.0
        return out.astype(np.float32)

    def stickers(self, stickers: list[Sticker], chunk: int = 512) -> np.ndarray:
        """(len(stickers), e) unit vectors, `chunk` stickers at a time (bounded memory)."""
        index = {sid: i for i, sid in enumerate(self.trained_ids)}
        out = np.empty((len(stickers), self.sticker_w.shape[1]), dtype=np.float32)
        for start in range(0, len(stickers), chunk):
            part = stickers[start : start + chunk]
            rows = np.array([index.get(s.sticker_id, len(self.trained_ids)) for s in part])
            ngrams = np.stack([sticker_features(s, self.feature_width, self.names) for s in part])
            pooled = self.sticker_table[rows] + _pool(self.text_table, self.text_weight, ngrams)
            out[start : start + len(part)] = _normalise(pooled @ self.sticker_w + self.sticker_b)
        return out


_ARRAYS = ("text_table", "text_weight", "message_w", "message_b", "sticker_table", "sticker_w", "sticker_b")


#: how the served text table is stored: float16 halves it, and the top 10 stays float32's (a test)
TABLE_DTYPE = np.float16


def save_encoder(encoder: StickerEncoder, directory: Path, metrics: dict[str, float] | None = None) -> None:
    """Write the encoder; the text table (2^18 rows) in `TABLE_DTYPE` as its own file, which
    `load_encoder` memory-maps (one copy shared by every worker of a machine)."""
    manifest = {
        "format": FORMAT,
        "version": encoder.version,
        "trained_ids": list(encoder.trained_ids),
        "sticker_names": encoder.names,
        "sticker_features": encoder.feature_width,
        "metrics": metrics or {},
    }
    arrays = {name: getattr(encoder, name) for name in _ARRAYS if name != "text_table"}
    save_arrays(directory, "encoder", arrays, manifest, {"text_table": encoder.text_table.astype(TABLE_DTYPE)})


class EncoderError(ValueError):
    pass


def load_encoder(directory: Path) -> StickerEncoder:
    manifest, arrays = load_arrays(directory, "encoder", FORMAT, "sticker encoder", EncoderError)
    return StickerEncoder(
        version=str(manifest["version"]), trained_ids=tuple(manifest["trained_ids"]),
        names=bool(manifest.get("sticker_names", True)), feature_width=int(manifest.get("sticker_features", 1024)),
        **{name: arrays[name] for name in _ARRAYS},
    )  # fmt: skip
