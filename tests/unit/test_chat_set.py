"""The hand-written chat set `bench_stickers` measures quality on: at least 1,000 messages, 100 per
language, every language with native-script and romanised messages and a held-out part, every
fitting sticker in the catalog — and none of its messages, nor a near copy, in any training input
of the default sticker model (the chat corpus, the catalog's phrases)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tastemaker.stickers.catalog import LANGUAGES, read_catalog
from tastemaker.stickers.encoder import sticker_text
from tastemaker.training.modeling.chat_corpus import compose
from tests.support.leaks import grams, near_copies
from tests.support.stickers import CATALOG

CHAT = Path(__file__).resolve().parents[1] / "data" / "chat_stickers.jsonl"
CORPUS = Path(__file__).resolve().parents[2] / "data" / "chat"


def _messages() -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in CHAT.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_chat_set_covers_every_language_script_and_split() -> None:
    messages = _messages()
    assert len(messages) >= 1000
    assert len({m["text"] for m in messages}) == len(messages), "a message repeats"
    by_language = Counter(m["language"] for m in messages)
    assert set(by_language) == set(LANGUAGES) and min(by_language.values()) >= 100
    for language in LANGUAGES:
        mine = [m for m in messages if m["language"] == language]
        assert {m["split"] for m in mine} == {"tune", "held-out"}, language
        if language != "en":
            assert {"native", "romanised"} <= {m["form"] for m in mine}, language
    assert sum(m["form"] == "code-mixed" for m in messages) >= 30
    catalog = {s.sticker_id for s in read_catalog(CATALOG)}
    assert all(m["stickers"] and set(m["stickers"]) <= catalog for m in messages)


def test_no_chat_set_message_nor_a_near_copy_is_a_training_input() -> None:
    """Normalised text equal, or character 4-gram Jaccard ≥ 0.8, against every message of the
    composed chat corpus (what `stickers train --pairs` reads) and every phrase of the catalog."""
    evaluation = [m["text"] for m in _messages()]
    corpus = [str(r["text"]) for r in compose(CORPUS)]
    assert len(corpus) >= 15_000
    catalog = [phrase for s in read_catalog(CATALOG) for phrase in sticker_text(s)]
    leaks = near_copies(evaluation, corpus + catalog, threshold=0.8)
    assert not leaks, leaks[:10]


def test_the_near_copy_check_finds_copies() -> None:
    """It can fail: an exact copy, a re-spaced and re-cased copy, and one letter's difference in a
    long message are found; an unrelated message is not."""
    long = "aaj bahut bhook lagi hai yaar, ghar pe kuch khane ko nahi hai"
    training = ["happy birthday bro have a blast tonight", long]
    found = near_copies(
        ["Happy  Birthday bro have a blast tonight", long, long.replace("bhook", "bhuk"), "bahut bhuk lagi", "gn"],
        training,
    )
    assert [f[0] for f in found] == ["Happy  Birthday bro have a blast tonight", long, long.replace("bhook", "bhuk")]
    assert len(grams("gn")) == 1


def test_a_malformed_corpus_source_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    """An unknown intent, a line without stickers or a missing language file: CorpusError with
    where, never a traceback deeper down."""
    import pytest

    from tastemaker.training.modeling.chat_corpus import CorpusError

    (tmp_path / "intents.txt").write_text("# intents\nhello: emoji-1f44b\n", encoding="utf-8")
    for language in LANGUAGES:
        (tmp_path / f"{language}.txt").write_text("hello | hi there\n", encoding="utf-8")
    assert {r["intent"] for r in compose(tmp_path)} == {"hello"}
    (tmp_path / "hi.txt").write_text("hello | नमस्ते\nbye | अलविदा\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"hi\.txt:2: unknown intent 'bye'"):
        compose(tmp_path)
    (tmp_path / "hi.txt").unlink()
    with pytest.raises(CorpusError, match=r"hi\.txt: missing"):
        compose(tmp_path)
    (tmp_path / "intents.txt").write_text("hello:\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"intents\.txt:1: expected"):
        compose(tmp_path)
