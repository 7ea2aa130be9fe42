"""The sticker catalog the tests train on (`make stickers-catalog` builds it) and the words that
choose the training subset."""

from __future__ import annotations

from pathlib import Path

CATALOG = Path(__file__).resolve().parents[2] / "data" / "stickers" / "cldr-catalog.jsonl"
WORDS = ("heart", "birthday", "cake", "party", "gift", "balloon", "cat", "dog", "fire", "star", "flower",
         "pizza", "rain", "sun", "moon", "tear", "laugh", "kiss", "thumbs", "music")  # fmt: skip
