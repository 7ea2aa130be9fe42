"""A server sticker bundle → a device bundle (`tastemaker/device/bundle.py`): the message tower as a
LiteRT flatbuffer over a product-quantised feature table, the sticker vectors in int8, the chat head
product-quantised, the tokeniser spec and a typeahead prefix table, within a byte budget.

The server's text table holds every one of 2^18 hash buckets (64 floats each, 64 MB); a phone gets
the `K` rows that matter most, chosen from text the model learned from — the catalog's phrases and
the training chat pairs, never the evaluation chat set — by how often each feature occurs there
times its learned pooling weight, as many as the budget allows. A feature outside them weighs
nothing on the device (as padding does). The kept rows are product-quantised (`PQ_SUBSPACES` bytes a
row, after `balanced_rotation`, folded into the projection), the pooling weights a byte each; the
pooling, the projection and the normalisation run in the flatbuffer as `StickerEncoder.messages`.
The head keeps its rows likewise, product-quantised (a byte per `HEAD_PQ_WIDTH` stickers).
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.device import spec
from tastemaker.device.bundle import KIND, array_bytes, write_device_bundle
from tastemaker.optional import require
from tastemaker.stickers.bundle import Bundle
from tastemaker.stickers.encoder import sticker_text
from tastemaker.stickers.head import head_features
from tastemaker.stickers.text import BUCKETS, MAX_FEATURES, features
from tastemaker.stickers.typeahead import prefix_table
from tastemaker.training.progress import progress

#: the whole bundle at most (the issue's target: a model update a phone can take often)
DEFAULT_BUDGET_BYTES = 5_000_000
#: the budget's share the encoder's rows may take when there is a head (the head takes the rest)
ENCODER_SHARE = 0.7
#: product quantisation of the encoder's rows: bytes per row (4 dimensions a byte), centroids each
PQ_SUBSPACES = 16
PQ_CENTROIDS = 256
#: the chat head's rows: stickers a code (a byte per 4 stickers' weights)
HEAD_PQ_WIDTH = 4


@dataclass(frozen=True)
class DeviceExport:
    path: Path
    sha256: str
    bytes: int
    version: str
    encoder_rows: int
    head_rows: int
    seconds: float
    #: typeahead's table as exported
    prefixes: dict[str, str]


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def quantise_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 rows, float32 per-row scale) with row ≈ int8 · scale (symmetric, 127 levels)."""
    scale = np.maximum(np.abs(table).max(axis=1), 1e-12) / 127.0
    q = np.clip(np.round(table / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def encoder_rows(bundle: Bundle, texts: Iterable[str], count: int) -> np.ndarray:
    """The `count` hashed features of the encoder to keep (sorted): those of `texts` ranked by
    occurrences × softplus(learned pooling weight)."""
    seen: Counter[int] = Counter()
    for text in texts:
        seen.update(set(features(text)))
    ids = np.fromiter(seen.keys(), dtype=np.int64, count=len(seen))
    counts = np.fromiter(seen.values(), dtype=np.float64, count=len(seen))
    score = counts * _softplus(bundle.encoder.text_weight[ids].astype(np.float64))
    keep = ids[np.argsort(-score, kind="stable")[:count]]
    return np.sort(keep).astype(np.int32)


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(k centroids, each point's centroid) by Lloyd's k-means from k distinct points."""
    k = min(k, len(points))
    centroids = points[rng.choice(len(points), k, replace=False)].astype(np.float32)
    assigned = np.zeros(len(points), dtype=np.int64)
    for step in range(iterations + 1):
        for start in range(0, len(points), 65_536):
            part = points[start : start + 65_536]
            distance = (centroids**2).sum(axis=1)[None, :] - 2.0 * part @ centroids.T
            assigned[start : start + len(part)] = distance.argmin(axis=1)
        if step == iterations:
            break
        sizes = np.bincount(assigned, minlength=k)
        for d in range(points.shape[1]):
            sums = np.bincount(assigned, weights=points[:, d], minlength=k)
            centroids[:, d] = np.where(sizes > 0, sums / np.maximum(sizes, 1), centroids[:, d])
        empty = np.flatnonzero(sizes == 0)
        centroids[empty] = points[rng.choice(len(points), len(empty), replace=False)]
    return centroids, assigned


def product_quantise(
    table: np.ndarray, subspaces: int, seed: int = 0, label: str = "product quantisation"
) -> tuple[np.ndarray, np.ndarray]:
    """(codes (n, subspaces) uint8, codebook (subspaces, 256, d / subspaces) float32): each row cut
    into `subspaces` pieces, each piece replaced by the nearest of 256 centroids learned on it."""
    n, dim = table.shape
    if dim % subspaces:
        raise ValueError(f"{subspaces} subspaces do not divide dimension {dim}")
    width = dim // subspaces
    rng = np.random.default_rng(seed)
    codes = np.zeros((n, subspaces), dtype=np.uint8)
    book = np.zeros((subspaces, PQ_CENTROIDS, width), dtype=np.float32)
    for m in progress(range(subspaces), label, min_items=1):  # a bar on a terminal: tens of seconds in all
        centroids, assigned = kmeans(np.ascontiguousarray(table[:, m * width : (m + 1) * width]), PQ_CENTROIDS, rng)
        book[m, : len(centroids)] = centroids
        codes[:, m] = assigned
    return codes, book


def balanced_rotation(table: np.ndarray, subspaces: int) -> np.ndarray:
    """An orthonormal (d, d) rotation R for product quantisation (as OPQ's non-parametric start):
    the rows' principal axes, dealt to the subspaces so each gets a like share of the variance
    (the largest axis to the first, the next to the second, … then back), so no subspace's 256
    centroids are spent on a direction with nothing in it."""
    centred = table - table.mean(axis=0)
    variance, axes = np.linalg.eigh(centred.T @ centred / max(1, len(table) - 1))
    order = np.argsort(-variance)
    width = table.shape[1] // subspaces
    slots: list[list[int]] = [[] for _ in range(subspaces)]
    for rank, axis in enumerate(order):
        lap, at = divmod(rank, subspaces)
        slots[at if lap % 2 == 0 else subspaces - 1 - at].append(int(axis))
    columns = [axis for slot in slots for axis in slot[:width]]
    return axes[:, columns].astype(np.float32)


def weight_levels(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes uint8 in 1..255, levels (256,) float32 with levels[0] = 0 for padding): each pooling
    weight replaced by the nearest of 255 levels at its distribution's quantiles."""
    levels = np.unique(np.quantile(weights, np.linspace(0.0, 1.0, 255))).astype(np.float32)
    edges = (levels[1:] + levels[:-1]) / 2
    codes = (np.searchsorted(edges, weights) + 1).astype(np.uint8)
    return codes, np.concatenate([[0.0], levels, np.zeros(255 - len(levels))]).astype(np.float32)


def encoder_flatbuffer(bundle: Bundle, rows: np.ndarray, subspaces: int = PQ_SUBSPACES) -> bytes:
    """The message tower over the kept `rows` as a LiteRT flatbuffer: input `features` (1,
    MAX_FEATURES) int32 compact rows (0 = padding), output the (1, e) unit vector. The rows are
    product-quantised (`subspaces` bytes each), their pooling weights one byte each."""
    tf = require("tensorflow", "ml", "exporting the device encoder")
    encoder = bundle.encoder
    table = encoder.text_table[rows].astype(np.float32)
    rotation = balanced_rotation(table, subspaces)
    codes, book = product_quantise(table @ rotation, subspaces, label=f"encoder: {len(rows):,} rows, k-means per piece")
    weight_codes, levels = weight_levels(_softplus(encoder.text_weight[rows].astype(np.float64)))
    width = book.shape[2]
    table_codes = tf.constant(np.vstack([np.zeros((1, subspaces), np.uint8), codes]))
    offsets = tf.constant((np.arange(subspaces) * PQ_CENTROIDS).astype(np.int32))
    codebook = tf.constant(book.reshape(subspaces * PQ_CENTROIDS, width))
    row_weights = tf.constant(np.concatenate([[0], weight_codes]).astype(np.uint8))
    weight_table = tf.constant(levels)
    # pool(T R) Rᵀ W = pool(T) W: the rotation folds into the projection
    project = tf.constant((rotation.T @ encoder.message_w.astype(np.float32)).astype(np.float32))
    bias = tf.constant(encoder.message_b.astype(np.float32))
    dim = subspaces * width

    class Tower(tf.Module):  # type: ignore[misc, name-defined]
        @tf.function(input_signature=[tf.TensorSpec([1, MAX_FEATURES], tf.int32, name="features")])
        def encode(self, ids: Any) -> Any:
            pieces = tf.cast(tf.gather(table_codes, ids), tf.int32) + offsets  # (1, F, subspaces)
            looked_up = tf.reshape(tf.gather(codebook, pieces), [1, MAX_FEATURES, dim])
            weight = tf.gather(weight_table, tf.cast(tf.gather(row_weights, ids), tf.int32))  # (1, F)
            pooled = tf.reduce_sum(looked_up * weight[..., None], axis=1)
            pooled /= tf.maximum(tf.reduce_sum(weight, axis=1, keepdims=True), 1e-9)
            out = tf.matmul(pooled, project) + bias
            return {"vector": out / tf.maximum(tf.norm(out, axis=-1, keepdims=True), 1e-12)}

    tower = Tower()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([tower.encode.get_concrete_function()], tower)
    return bytes(converter.convert())


def head_rows(bundle: Bundle, texts: Iterable[str], count: int) -> np.ndarray:
    """Indexes into the head's rows to keep (sorted): the head's features of `texts` ranked by
    occurrences × the row's largest weight."""
    head = bundle.head
    assert head is not None
    seen: Counter[int] = Counter()
    for text in texts:
        seen.update(head_features(text).tolist())
    ids = np.fromiter(seen.keys(), dtype=np.int64, count=len(seen))
    where = np.searchsorted(head.rows, ids)
    known = (where < len(head.rows)) & (head.rows[np.minimum(where, len(head.rows) - 1)] == ids)
    where, counts = where[known], np.fromiter(seen.values(), dtype=np.float64, count=len(seen))[known]
    strength = np.abs(head.weights[where].astype(np.float32)).max(axis=1)
    keep = where[np.argsort(-(counts * strength), kind="stable")[:count]]
    return np.sort(keep)


def export_device(
    bundle: Bundle,
    out: Path,
    texts: Sequence[str],
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    epsilon: float = 0.1,
) -> DeviceExport:
    """Write the device bundle of `bundle` to `out`; `texts`: the chat the model learned from (its
    training pairs' messages), which with the catalog's phrases ranks the rows kept."""
    started = time.monotonic()
    index = bundle.index.index
    learned = list(texts) + [p for s in bundle.catalog.values() for p in sticker_text(s)]
    prefixes = bundle.prefixes or prefix_table(learned)
    sticker_q, sticker_scale = quantise_rows(index.vectors.astype(np.float32))
    members: dict[str, bytes] = {
        "stickers.npy": array_bytes(sticker_q),
        "stickers_scale.npy": array_bytes(sticker_scale),
        "stickers.json": json.dumps(
            [
                {
                    "id": m.sticker_id,
                    "pack": m.pack,
                    "languages": sorted(m.languages),
                    "emoji": getattr(bundle.catalog.get(m.sticker_id), "emoji", ""),
                }
                for m in index.meta
            ],
            ensure_ascii=False,
        ).encode("utf-8"),
        "prefixes.json": json.dumps(prefixes, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
    }
    # the JSON members are deflated in the file; 64 kB for the manifest and the flatbuffer's own graph
    fixed = sum(len(zlib.compress(b)) if n.endswith(".json") else len(b) for n, b in members.items()) + 64_000
    left = budget_bytes - fixed
    if left <= 0:
        raise ValueError(f"a {budget_bytes:,}-byte budget does not hold the sticker vectors ({fixed:,} bytes)")
    dim = bundle.encoder.text_table.shape[1]
    head = bundle.head if bundle.head_weight > 0 else None
    encoder_budget = left * (ENCODER_SHARE if head is not None else 1.0)
    rows = encoder_rows(bundle, learned, int(encoder_budget // (PQ_SUBSPACES + 1)))
    members["encoder.tflite"] = encoder_flatbuffer(bundle, rows)
    kept = np.zeros(BUCKETS, dtype=bool)
    kept[rows] = True
    members["encoder_rows.npy"] = array_bytes(np.packbits(kept))
    kept_head = 0
    if head is not None:
        labels = len(head.labels)
        room = budget_bytes - fixed - len(members["encoder.tflite"]) - len(members["encoder_rows.npy"])
        # product-quantised like the encoder's rows (4 stickers' weights a byte): 4× the rows of int8
        pieces = -(-labels // HEAD_PQ_WIDTH)
        book_bytes = pieces * PQ_CENTROIDS * HEAD_PQ_WIDTH * 4
        keep = head_rows(bundle, learned, max(0, int((room - book_bytes) // (pieces + 4)) - 1))
        kept_head = len(keep)
        weights = np.zeros((len(keep), pieces * HEAD_PQ_WIDTH), dtype=np.float32)
        weights[:, :labels] = head.weights[keep]
        codes, book = product_quantise(weights, pieces, label=f"chat head: {len(keep):,} rows, k-means per piece")
        members |= {
            "head_rows.npy": array_bytes(head.rows[keep].astype(np.int32)),
            "head_codes.npy": array_bytes(codes),
            "head_book.npy": array_bytes(book),
            "head_bias.npy": array_bytes(head.bias.astype(np.float32)),
            "head_prior.npy": array_bytes(head.prior.astype(np.float32)),
            "head.json": json.dumps(list(head.labels)).encode("utf-8"),
        }
    manifest = {
        "kind": KIND,
        "version": f"{bundle.encoder.version}-device",
        "server_version": f"{bundle.encoder.version}+{index.version}",
        "created_ms": int(time.time() * 1000),
        "tokeniser": spec.tokeniser_spec(),
        "encoder": {"rows": len(rows), "dim": dim, "output_dim": int(bundle.encoder.message_w.shape[1]),
                    "input": [1, MAX_FEATURES],
                    "quantisation": f"product-quantised, {PQ_SUBSPACES} bytes a row; a byte per weight"},
        "stickers": {"count": len(index.meta), "quantisation": "int8, a scale per row"},
        "head": {"rows": kept_head, "of": len(head.rows), "labels": len(head.labels), "weight": bundle.head_weight}
        if head is not None else None,
        "exploration": {"policy": "epsilon-greedy", "epsilon": epsilon},
        "prefixes": len(prefixes),
    }  # fmt: skip
    digest = write_device_bundle(out, manifest, members)
    return DeviceExport(
        out,
        digest,
        out.stat().st_size,
        str(manifest["version"]),
        len(rows),
        kept_head,
        time.monotonic() - started,
        prefixes,
    )
