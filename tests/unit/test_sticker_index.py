"""The sticker index: ScaNN agrees with exact search, filters by language and pack, loads only
what matches its checksums, and loads ScaNN without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tastemaker.stickers.index import StickerIndex, StickerMeta


def _index(n: int, backend: str) -> StickerIndex:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 32))
    x = centres[rng.integers(0, 50, n)] + 0.2 * rng.normal(size=(n, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    meta = [
        StickerMeta(f"s{i}", "even" if i % 2 == 0 else "odd", frozenset({"en"} if i % 3 else {"hi"})) for i in range(n)
    ]
    return StickerIndex(x, meta, "v1", backend)


def test_scann_finds_what_exact_search_finds() -> None:
    exact, scann = _index(30_000, "exact"), _index(30_000, "scann")
    assert scann.backend == "scann" and _index(100, "auto").backend == "exact"
    rng = np.random.default_rng(1)
    recalls = []
    for _ in range(50):
        q = exact.vectors[rng.integers(len(exact))] + 0.05 * rng.normal(size=32).astype(np.float32)
        q /= np.linalg.norm(q)
        a = {m.sticker_id for m, _ in exact.search(q, 10)}
        b = {m.sticker_id for m, _ in scann.search(q, 10)}
        recalls.append(len(a & b) / 10)
    assert np.mean(recalls) >= 0.9, np.mean(recalls)


def test_filters_by_language_and_pack() -> None:
    index = _index(2000, "exact")
    q = index.vectors[7]
    hits = index.search(q, 20, language="hi", pack="odd")
    assert len(hits) == 20 and all("hi" in m.languages and m.pack == "odd" for m, _ in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_saved_index_is_checked_on_load(tmp_path: Path) -> None:
    index = _index(500, "exact")
    index.save(tmp_path / "idx")
    loaded = StickerIndex.load(tmp_path / "idx")
    assert loaded.version == "v1" and len(loaded) == 500
    np.testing.assert_array_equal(loaded.vectors, index.vectors)
    (tmp_path / "idx" / "ids.json").write_text("[]")
    with pytest.raises(ValueError, match="checksum"):
        StickerIndex.load(tmp_path / "idx")


def test_scann_loads_without_tensorflow() -> None:
    probe = (
        "import sys\n"
        "from tastemaker.stickers.index import scann_pybind\n"
        "scann_pybind()\n"
        "assert 'tensorflow' not in sys.modules or sys.modules['tensorflow'] is None, 'TensorFlow was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
