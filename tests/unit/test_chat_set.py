"""The hand-written chat set `bench_stickers` measures quality on: at least 300 messages, every
language with native-script and romanised messages and a held-out part, every fitting sticker in
the catalog."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tastemaker.stickers.catalog import LANGUAGES, read_catalog
from tests.support.stickers import CATALOG

CHAT = Path(__file__).resolve().parents[1] / "data" / "chat_stickers.jsonl"


def test_the_chat_set_covers_every_language_script_and_split() -> None:
    messages = [json.loads(line) for line in CHAT.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(messages) >= 300
    assert len({m["text"] for m in messages}) == len(messages), "a message repeats"
    by_language = Counter(m["language"] for m in messages)
    assert set(by_language) == set(LANGUAGES) and min(by_language.values()) >= 30
    for language in LANGUAGES:
        mine = [m for m in messages if m["language"] == language]
        assert {m["split"] for m in mine} == {"tune", "held-out"}, language
        if language != "en":
            assert {"native", "romanised"} <= {m["form"] for m in mine}, language
    assert sum(m["form"] == "code-mixed" for m in messages) >= 30
    catalog = {s.sticker_id for s in read_catalog(CATALOG)}
    assert all(m["stickers"] and set(m["stickers"]) <= catalog for m in messages)
