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


def test_a_model_held_out_from_the_names_never_reads_them() -> None:
    sticker = Sticker("s", "", "pack", {"en": Phrases("trombone", ("brass", "jazz"))}, {})
    with_names = set(sticker_features(sticker).tolist())
    without = set(sticker_features(sticker, names=False).tolist())
    assert _word("trombone") in with_names and _word("trombone") not in without
    assert {_word("brass"), _word("jazz")} <= without
    assert not {i for i in features("trombone")} & without - {0} - set(features("brass jazz"))
