"""The sticker encoder's training pairs: which texts, which stickers, how much each counts."""

from __future__ import annotations

import numpy as np

from tastemaker.stickers.catalog import Phrases, Sticker
from tastemaker.training.modeling.sticker_training import training_pairs


def _sticker(sticker_id: str, en: tuple[str, ...]) -> Sticker:
    return Sticker(
        sticker_id,
        "x",
        "p",
        {"en": Phrases(en[0], en), "hi": Phrases("दिल", ("दिल",))},
        {"hi": Phrases("dil", ("dil",))},
    )


STICKERS = [_sticker("a", ("alien", "ufo")), _sticker("b", ("alien", "monster", "game", "space"))]


def test_a_keyword_weighs_as_one_draw_among_its_stickers_keywords() -> None:
    """A user who means a sticker types one of its keywords: 'alien' is twice as likely to mean the
    sticker with 2 keywords as the one with 4. Each single-keyword pair weighs 1/K for a sticker
    with K keywords in that language and script, scaled so that these pairs' mean weight is 1."""
    texts, targets, weights = training_pairs(STICKERS, combined=2, seed=0, chatty=0.0)
    pairs = list(zip(texts, targets.tolist(), weights.tolist(), strict=True))
    singles = [(t, i, w) for t, i, w in pairs if " " not in t and t != "x"]  # "x": the emoji, weight 1
    assert [(t, w) for t, _, w in pairs if t == "x"] == [("x", 1.0), ("x", 1.0)]
    # 2 + 4 English keywords, one Hindi and one romanised Hindi keyword per sticker
    assert len(singles) == 10
    alien = {i: w for t, i, w in singles if t == "alien"}
    np.testing.assert_allclose(alien[0], 2 * alien[1])
    np.testing.assert_allclose(np.mean([w for _, _, w in singles]), 1.0)
    # every sticker, in every language and script, weighs the same in all
    for lang_texts in ({"alien", "ufo", "monster", "game", "space"}, {"दिल"}, {"dil"}):
        totals = [sum(w for t, k, w in singles if k == i and t in lang_texts) for i in range(len(STICKERS))]
        np.testing.assert_allclose(totals[0], totals[1])


def test_combinations_are_made_of_the_stickers_keywords_and_weigh_one() -> None:
    texts, targets, weights = training_pairs(STICKERS, combined=2, seed=0, chatty=0.0)
    combos = [(t, i, w) for t, i, w in zip(texts, targets.tolist(), weights.tolist(), strict=True) if " " in t]
    # 2 per sticker in each language with at least two keywords (English only here)
    assert sorted(i for _, i, _ in combos) == [0, 0, 1, 1]
    for text, i, w in combos:
        words = text.split()
        assert 2 <= len(words) <= 4 and len(set(words)) == len(words)
        assert set(words) <= set(STICKERS[i].phrases["en"].keywords)
        assert w == 1.0
    # another seed draws other combinations (drawn afresh each epoch)
    assert [t for t in training_pairs(STICKERS, combined=2, seed=1, chatty=0.0)[0] if " " in t] != [
        t for t, _, _ in combos
    ]


def test_chatty_combinations_read_like_chat_and_keep_the_stickers_words() -> None:
    """With `chatty`, combinations get filler, spelling drift, typos, English words or the emoji,
    and still carry at least one of the sticker's own words (or its emoji)."""
    from tastemaker.stickers.chat import FILLER, spelling_variant, typo

    stickers = [
        Sticker("h", "❤", "heart", {"en": Phrases("red heart", ("heart", "love", "red"))},
                {"hi": Phrases("dil", ("dil", "pyaar", "mohabbat"))}),
    ]  # fmt: skip
    texts, targets, weights = training_pairs(stickers, combined=200, seed=0, chatty=1.0)
    assert "❤" in texts  # the emoji is a query of its own
    combos = [t for t in texts if " " in t]
    assert len(combos) == 400 and set(targets.tolist()) == {0}
    own = {"heart", "love", "red", "dil", "pyaar", "mohabbat", "❤"}
    fillers = {w for words in FILLER.values() for phrase in words for w in phrase.split()}
    assert any(set(t.split()) & fillers for t in combos)
    assert any(set(t.split()) - own - fillers for t in combos)  # drifted spellings or typos
    assert sum(bool(set(t.split()) & own) for t in combos) > 0.8 * len(combos)
    rng = np.random.default_rng(0)
    variants = {spelling_variant("bahut", rng) for _ in range(100)}
    assert {"bohut", "baahut", "bahoot"} <= variants and all(v.startswith("b") for v in variants)
    assert all(typo("x", rng).startswith("x") for _ in range(5))
    assert weights.min() > 0


def test_native_script_messages_get_filler_in_their_own_script() -> None:
    """A Hindi message typed in Devanagari is padded with Devanagari filler ("है", "यार"), never
    with the romanised "hai"/"yaar" no native typist writes; a romanised one gets the Latin filler."""
    from tastemaker.stickers.chat import FILLER, NATIVE_FILLER, chat_message

    rng = np.random.default_rng(1)
    native = [chat_message(["गुस्सा"], "hi", False, rng) for _ in range(300)]
    romanised = [chat_message(["gussa"], "hi", True, rng) for _ in range(300)]
    native_words = {w for m in native for w in m.split()}
    assert native_words & set(NATIVE_FILLER["hi"]) and not native_words & set(FILLER["hi"])
    assert {w for m in romanised for w in m.split()} & set(FILLER["hi"])
    for language, words in NATIVE_FILLER.items():  # every language has filler typed natively
        assert words and (language == "en" or all(not w.isascii() for w in words)), language
