"""A sticker model bundle: the encoder, the index of its catalog's stickers, and the catalog.

    <dir>/encoder/   encoder.npz + manifest.json (`stickers/encoder.py`)
    <dir>/index/     vectors.npy + ids.json + manifest.json (`stickers/index.py`)
    <dir>/catalog.jsonl
    <dir>/manifest.json  kind, version (the encoder's), metrics; what the model registry reads

`tastemaker stickers train` writes it; serving loads it from `TASTEMAKER_STICKER_MODEL`, or follows
the registry's current `stickers` version (`TASTEMAKER_MODEL_REGISTRY`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tastemaker.stickers.catalog import Sticker, read_catalog
from tastemaker.stickers.encoder import StickerEncoder, load_encoder, save_encoder
from tastemaker.stickers.index import IndexHolder, StickerIndex, StickerMeta


@dataclass(frozen=True)
class Bundle:
    encoder: StickerEncoder
    index: IndexHolder
    catalog: dict[str, Sticker]


def build_index(encoder: StickerEncoder, stickers: list[Sticker], version: str, backend: str = "auto") -> StickerIndex:
    meta = [StickerMeta(s.sticker_id, s.pack, frozenset(s.languages())) for s in stickers]
    return StickerIndex(encoder.stickers(stickers), meta, version, backend)


BUNDLE_FORMAT = "tastemaker.sticker-bundle/1"


def save_bundle(
    directory: Path,
    encoder: StickerEncoder,
    stickers: list[Sticker],
    catalog_file: Path,
    manifest: dict[str, Any] | None = None,
) -> StickerIndex:
    """Write the bundle; `manifest` adds to its manifest.json (metrics, the data it learned from)."""
    save_encoder(encoder, directory / "encoder")
    index = build_index(encoder, stickers, f"{encoder.version}-index")
    index.save(directory / "index")
    shutil.copyfile(catalog_file, directory / "catalog.jsonl")
    head = {"format": BUNDLE_FORMAT, "kind": "stickers", "version": encoder.version, "stickers": len(stickers)}
    (directory / "manifest.json").write_text(json.dumps({**head, **(manifest or {})}, indent=2), encoding="utf-8")
    return index


def load_bundle(directory: Path) -> Bundle:
    encoder = load_encoder(directory / "encoder")
    index = StickerIndex.load(directory / "index")
    catalog = {s.sticker_id: s for s in read_catalog(directory / "catalog.jsonl")}
    return Bundle(encoder, IndexHolder(index), catalog)
