"""A sticker model bundle: the encoder, the index of its catalog's stickers, and the catalog.

    <dir>/encoder/   encoder.npz + manifest.json (`stickers/encoder.py`)
    <dir>/index/     vectors.npy + ids.json + manifest.json (`stickers/index.py`)
    <dir>/head/      head.npz + manifest.json (`stickers/head.py`), when trained on pairs
    <dir>/catalog.jsonl
    <dir>/prefixes.json  typeahead's prefix table (`typeahead.py`), when written
    <dir>/device-bundle.zip  the device bundle (`stickers export-device`, `device/bundle.py`), when exported
    <dir>/manifest.json  kind, version (the encoder's), head_weight, metrics; what the model registry reads

`tastemaker stickers train` writes it; serving loads it from `TASTEMAKER_STICKER_MODEL`, or follows
the registry's current `stickers` version (`TASTEMAKER_MODEL_REGISTRY`).
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tastemaker.stickers.catalog import Sticker, read_catalog
from tastemaker.stickers.encoder import StickerEncoder, load_encoder, save_encoder
from tastemaker.stickers.head import StickerHead, load_head, save_head
from tastemaker.stickers.index import IndexHolder, StickerIndex, StickerMeta


class LazyCatalog(Mapping[str, Sticker]):
    """A bundle's catalog, read from its file on first use: serving never needs the stickers'
    phrases (the index holds their vectors, ids, packs and languages), and 1,642 CLDR stickers with
    their phrases in ten languages are about 55 MB of Python objects in every worker."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stickers: dict[str, Sticker] | None = None

    def _loaded(self) -> dict[str, Sticker]:
        if self._stickers is None:
            with self._lock:
                if self._stickers is None:
                    self._stickers = {s.sticker_id: s for s in read_catalog(self._path)}
        return self._stickers

    def __getitem__(self, sticker_id: str) -> Sticker:
        return self._loaded()[sticker_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


@dataclass(frozen=True)
class Bundle:
    encoder: StickerEncoder
    index: IndexHolder
    catalog: Mapping[str, Sticker]
    #: learned from (message, sticker) pairs; None when the bundle learned from the catalog alone
    head: StickerHead | None = None
    #: the head's share of the blend (`head.blend`)
    head_weight: float = 0.0
    #: where it was loaded from (None: built in memory)
    directory: Path | None = None
    #: typeahead's prefix table (`typeahead.prefix_table`; empty: unfinished words are encoded as typed)
    prefixes: dict[str, str] = field(default_factory=dict)

    @property
    def device_bundle(self) -> Path | None:
        """Where its device bundle lives (`stickers export-device`), whether or not it was written."""
        return self.directory / DEVICE_BUNDLE if self.directory is not None else None


def build_index(encoder: StickerEncoder, stickers: list[Sticker], version: str, backend: str = "auto") -> StickerIndex:
    meta = [StickerMeta(s.sticker_id, s.pack, frozenset(s.languages())) for s in stickers]
    return StickerIndex(encoder.stickers(stickers), meta, version, backend)


BUNDLE_FORMAT = "tastemaker.sticker-bundle/1"
#: the device bundle's file name inside a bundle directory
DEVICE_BUNDLE = "device-bundle.zip"
PREFIXES = "prefixes.json"
#: the head's share of the blend when a bundle has one (`stickers train --head-weight`)
DEFAULT_HEAD_WEIGHT = 0.5


def save_bundle(
    directory: Path,
    encoder: StickerEncoder,
    stickers: list[Sticker],
    catalog_file: Path,
    manifest: dict[str, Any] | None = None,
    head: StickerHead | None = None,
    head_weight: float = DEFAULT_HEAD_WEIGHT,
    prefixes: dict[str, str] | None = None,
) -> StickerIndex:
    """Write the bundle; `manifest` adds to its manifest.json (metrics, the data it learned from)."""
    if not 0.0 <= head_weight <= 1.0:
        raise ValueError(f"`head_weight` must be in [0, 1], got {head_weight}")
    save_encoder(encoder, directory / "encoder")
    if head is not None:
        save_head(head, directory / "head")
    index = build_index(encoder, stickers, f"{encoder.version}-index")
    index.save(directory / "index")
    shutil.copyfile(catalog_file, directory / "catalog.jsonl")
    if prefixes:
        save_prefixes(directory, prefixes)
    top = {"format": BUNDLE_FORMAT, "kind": "stickers", "version": encoder.version, "stickers": len(stickers),
           "head_weight": head_weight if head is not None else 0.0}  # fmt: skip
    (directory / "manifest.json").write_text(json.dumps({**top, **(manifest or {})}, indent=2), encoding="utf-8")
    return index


def save_prefixes(directory: Path, prefixes: dict[str, str]) -> None:
    text = json.dumps(prefixes, ensure_ascii=False, separators=(",", ":"))
    (directory / PREFIXES).write_text(text, encoding="utf-8")


def load_bundle(directory: Path) -> Bundle:
    encoder = load_encoder(directory / "encoder")
    index = StickerIndex.load(directory / "index")
    if not (directory / "catalog.jsonl").is_file():
        raise ValueError(f"{directory}: catalog.jsonl is missing")
    catalog = LazyCatalog(directory / "catalog.jsonl")
    prefixes: dict[str, str] = {}
    if (directory / PREFIXES).is_file():
        prefixes = json.loads((directory / PREFIXES).read_text(encoding="utf-8"))
    if not (directory / "head").is_dir():
        return Bundle(encoder, IndexHolder(index), catalog, directory=directory, prefixes=prefixes)
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    weight = float(manifest.get("head_weight", DEFAULT_HEAD_WEIGHT))
    head = load_head(directory / "head")
    return Bundle(encoder, IndexHolder(index), catalog, head, weight, directory, prefixes)
