"""TweetEval's emoji task (the folder TASTEMAKER_TWEETEVAL_DIR names) as this project's files: a
20-sticker catalog of its emoji (19 from the CLDR catalog, the US flag as a custom sticker: CLDR
annotates no flag) and (tweet, sticker) pairs for the train and validation splits. The test split
is not in this project and is never read."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tastemaker.stickers.catalog import Phrases, Sticker, read_catalog, write_catalog

_RAW = os.environ.get("TASTEMAKER_TWEETEVAL_DIR", "")
TWEETEVAL_DIR = Path(_RAW) if _RAW and (Path(_RAW) / "mapping.txt").is_file() else None
SPLITS = ("train", "val")

US_FLAG = Sticker(
    "flag-us", "🇺🇸", "flags",
    {"en": Phrases("flag: United States", ("flag", "United States", "USA", "America", "American", "US"))},
    metadata={"source": "custom: CLDR annotates no flag"},
)  # fmt: skip


def emoji_labels(directory: Path) -> list[str]:
    """Label i's emoji, from mapping.txt."""
    return [line.split("\t")[1] for line in (directory / "mapping.txt").read_text(encoding="utf-8").splitlines()]


def catalog(cldr: Path, directory: Path) -> list[Sticker]:
    """The 20 stickers in label order (variation selectors ignored when matching CLDR's emoji)."""
    by_emoji = {s.emoji.replace("\ufe0f", ""): s for s in read_catalog(cldr)}
    out = []
    for emoji in emoji_labels(directory):
        sticker = by_emoji.get(emoji.replace("\ufe0f", ""))
        if sticker is None and emoji == US_FLAG.emoji:
            sticker = US_FLAG
        if sticker is None:
            raise ValueError(f"no sticker for {emoji!r}")
        out.append(sticker)
    return out


def write_files(cldr: Path, directory: Path, out: Path) -> dict[str, Path]:
    """catalog.jsonl, train.jsonl and val.jsonl under `out`; returns their paths by name."""
    stickers = catalog(cldr, directory)
    paths = {"catalog": out / "catalog.jsonl"}
    write_catalog(stickers, paths["catalog"])
    for split in SPLITS:
        texts = (directory / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
        labels = (directory / f"{split}_labels.txt").read_text(encoding="utf-8").split()
        paths[split] = out / f"{split}.jsonl"
        with paths[split].open("w", encoding="utf-8") as f:
            for text, label in zip(texts, labels, strict=True):
                if text.strip():
                    f.write(json.dumps({"text": text, "sticker_id": stickers[int(label)].sticker_id,
                                        "language": "en"}, ensure_ascii=False) + "\n")  # fmt: skip
    return paths
