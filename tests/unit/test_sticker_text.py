"""The hashed text features both towers share: a long message keeps every whole word, and a sticker
with more features than its row holds keeps a share of every language and script."""

from __future__ import annotations

from tastemaker.stickers.catalog import Phrases, Sticker
from tastemaker.stickers.encoder import sticker_features
from tastemaker.stickers.text import MAX_FEATURES, features


def _word(word: str) -> int:
    return features(word)[0]  # a one-word text's first feature is the word itself


def test_a_long_message_keeps_every_word() -> None:
    text = "grinning face with big smiling eyes and a very long tail of extra words"
    words = text.split(" ")
    ids = features(text)
    assert len(ids) == MAX_FEATURES  # the n-grams are cut ...
    assert {_word(w) for w in words} <= set(ids)  # ... the words are not


def test_every_language_keeps_a_share_of_a_full_sticker_row() -> None:
    long_phrase = {lang: Phrases(f"{lang} name", tuple(f"{lang}keyword{i}" for i in range(40)))
                   for lang in ("en", "hi", "ta", "te")}  # fmt: skip
    sticker = Sticker("s", "", "pack", long_phrase, {"hi": Phrases("dil", ("pyaar",))})
    row = sticker_features(sticker, width=200)
    kept = set(row[row > 0].tolist())
    assert len(kept) == 200
    for lang in ("en", "hi", "ta", "te"):  # every keyword word of every language, before any n-gram
        assert {_word(f"{lang}keyword{i}") for i in range(40)} <= kept
    assert _word("pyaar") in kept and _word("dil") in kept  # the romanised phrases too
