"""The sticker ANN index behind one interface: exact (numpy, brute force) and ScaNN (tree +
asymmetric hashing + exact reorder, tuned by catalog size; brute force below `SCANN_MIN_SIZE`).

- Filtering by language or pack: the index over-fetches and keeps the stickers whose metadata
  match (re-searching wider when too few pass).
- On disk: `vectors.npy`, `ids.json` and `manifest.json` with their SHA-256; the ScaNN structure
  is rebuilt on load (seconds at catalog sizes).
- `IndexHolder` serves one index and swaps in a rebuilt one atomically (a reference assignment),
  so a rebuild in the background never fails a request; `add` embeds new stickers from their
  phrases (no retraining) and rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tastemaker.optional import require

SCANN_MIN_SIZE = 20_000


@dataclass(frozen=True)
class StickerMeta:
    sticker_id: str
    pack: str
    languages: frozenset[str]


class Searcher(Protocol):
    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, scores) of the k best rows by dot product, best first."""
        ...


class ExactSearcher:
    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.vectors @ query
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        order = top[np.argsort(-scores[top], kind="stable")]
        return order, scores[order]


def scann_pybind() -> Any:
    """ScaNN's pybind module without importing TensorFlow (which `import scann` would, costing a
    serving process seconds and hundreds of MB): TensorFlow is blocked while it loads."""
    import sys

    blocked = "tensorflow" not in sys.modules
    if blocked:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    try:
        return require("scann.scann_ops.py.scann_ops_pybind", "ml", "the ScaNN index")
    finally:
        if blocked:
            del sys.modules["tensorflow"]


class ScannSearcher:
    """ScaNN's pybind searcher, tuned by size: √n leaves, a third of them searched, 2-dimension
    anisotropic hashing, exact reordering of the best `reorder` (recall@10 ≈ 0.95 on hard clustered
    data in `bench_stickers`)."""

    def __init__(self, vectors: np.ndarray, k: int = 100, reorder: int = 300) -> None:
        n = len(vectors)
        leaves = max(16, int(math.sqrt(n)))
        self._searcher = (
            scann_pybind()
            .builder(vectors, k, "dot_product")
            .tree(num_leaves=leaves, num_leaves_to_search=max(8, leaves // 3), training_sample_size=min(n, 250_000))
            .score_ah(2, anisotropic_quantization_threshold=0.2)
            .reorder(max(reorder, 4 * k))
            .build()
        )

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        indices, scores = self._searcher.search(query, final_num_neighbors=k)
        return np.asarray(indices, dtype=np.int64), np.asarray(scores)


class StickerIndex:
    def __init__(self, vectors: np.ndarray, meta: Sequence[StickerMeta], version: str, backend: str = "auto") -> None:
        if len(vectors) != len(meta):
            raise ValueError("one vector per sticker")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.meta = list(meta)
        self._positions = {m.sticker_id: i for i, m in enumerate(self.meta)}
        self.version = version
        if backend == "auto":
            backend = "scann" if len(meta) >= SCANN_MIN_SIZE else "exact"
        self.backend = backend
        self._searcher: Searcher = ScannSearcher(self.vectors) if backend == "scann" else ExactSearcher(self.vectors)

    def __len__(self) -> int:
        return len(self.meta)

    def __contains__(self, sticker_id: object) -> bool:
        return sticker_id in self._positions

    def position(self, sticker_id: str) -> int | None:
        """The sticker's row in `vectors` and `meta`, None when it is not indexed."""
        return self._positions.get(sticker_id)

    def search(
        self, query: np.ndarray, k: int, language: str | None = None, pack: str | None = None
    ) -> list[tuple[StickerMeta, float]]:
        """The k best stickers for a unit query vector, among those in `language` and `pack`."""
        fetch = k
        while True:
            indices, scores = self._searcher.search(query.astype(np.float32), min(fetch, len(self.meta)))
            hits = [
                (self.meta[i], float(s))
                for i, s in zip(indices, scores, strict=True)
                if (language is None or language in self.meta[i].languages)
                and (pack is None or self.meta[i].pack == pack)
            ]
            if len(hits) >= k or fetch >= len(self.meta):
                return hits[:k]
            fetch *= 4

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "vectors.npy", self.vectors)
        ids = [{"sticker_id": m.sticker_id, "pack": m.pack, "languages": sorted(m.languages)} for m in self.meta]
        (directory / "ids.json").write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")
        manifest = {
            "version": self.version,
            "size": len(self.meta),
            "sha256": {name: _digest(directory / name) for name in ("vectors.npy", "ids.json")},
        }
        (directory / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, backend: str = "auto") -> StickerIndex:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        for name, expected in manifest["sha256"].items():
            if _digest(directory / name) != expected:
                raise ValueError(f"{directory}: {name} does not match its checksum")
        ids = json.loads((directory / "ids.json").read_text(encoding="utf-8"))
        meta = [StickerMeta(i["sticker_id"], i["pack"], frozenset(i["languages"])) for i in ids]
        return cls(np.load(directory / "vectors.npy", allow_pickle=False), meta, manifest["version"], backend)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class IndexHolder:
    """The index a server searches; `swap` replaces it in one assignment, `rebuild_in_background`
    builds a new one off the request path and swaps it in when done."""

    def __init__(self, index: StickerIndex) -> None:
        self._index = index
        self._lock = threading.Lock()
        self.swaps = 0

    @property
    def index(self) -> StickerIndex:
        return self._index

    def swap(self, index: StickerIndex) -> None:
        self._index = index
        self.swaps += 1

    def rebuild_in_background(self, build: Any) -> threading.Thread:
        """Run `build()` (→ StickerIndex) in a thread and swap its result in."""

        def run() -> None:
            with self._lock:
                self.swap(build())

        thread = threading.Thread(target=run, name="sticker-index-rebuild", daemon=True)
        thread.start()
        return thread
