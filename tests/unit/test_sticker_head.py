"""The chat head: its features, its probabilities, the blend with the encoder, what it learns from
pairs, and its files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastemaker.stickers.head import (
    ENCODER_TEMPERATURE,
    HeadError,
    StickerHead,
    blend,
    head_features,
    load_head,
    save_head,
)


def _head(rows: list[int], weights: list[list[float]], labels: tuple[str, ...]) -> StickerHead:
    order = np.argsort(rows)
    return StickerHead(
        np.array(rows, dtype=np.int64)[order], np.array(weights, dtype=np.float32)[order],
        np.zeros(len(labels), np.float32), labels, np.full(len(labels), 1 / len(labels), np.float32),
    )  # fmt: skip


def test_features_are_distinct_sorted_and_see_words_bigrams_and_spelling() -> None:
    ids = head_features("Bahut  bhook lagi")
    assert np.all(np.diff(ids) > 0)
    assert np.array_equal(ids, head_features("bahut bhook lagi"))  # case and spaces are normalised away
    shared = len(np.intersect1d(ids, head_features("bohot bhuk lagi hai")))
    assert shared >= 10  # spelling variants share character n-grams
    assert len(head_features("   ")) == 0


def test_probabilities_follow_the_weights_of_the_known_features() -> None:
    night, thanks = head_features("gn")[0], head_features("thx")[0]
    head = _head([int(night), int(thanks)], [[3.0, 0.0], [0.0, 3.0]], ("moon", "pray"))
    p = head.probabilities(["gn", "thx", "zzzz unknown"])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert p[0, 0] > 0.5 > p[1, 0]
    # a message without a known feature gets the bias alone: uniform here
    np.testing.assert_allclose(p[2], [0.5, 0.5], rtol=1e-6)


def test_blend_is_a_mixture_of_the_encoders_softmax_and_the_head() -> None:
    similarity = np.array([[0.9, 0.5, 0.1]])
    ids = ("a", "b", "c")
    encoder = np.exp(similarity / ENCODER_TEMPERATURE)
    encoder /= encoder.sum()
    np.testing.assert_allclose(np.exp(blend(similarity, ids, None, ["x"], 0.5)), encoder, rtol=1e-6)
    head = _head([int(head_features("x")[0])], [[0.0, 0.0]], ("b", "zz"))  # "c", "a" hold no pair
    p_head_b = head.probabilities(["x"])[0, 0]
    expect = 0.7 * encoder + 0.3 * np.array([[0.0, p_head_b, 0.0]])
    np.testing.assert_allclose(np.exp(blend(similarity, ids, head, ["x"], 0.3)), expect, rtol=1e-5)
    np.testing.assert_allclose(np.exp(blend(similarity, ids, head, ["x"], 0.0)), encoder, rtol=1e-6)


def test_the_head_learns_words_no_catalog_phrase_holds() -> None:
    pytest.importorskip("tensorflow")
    from tastemaker.training.modeling.sticker_head_training import train_head

    rng = np.random.default_rng(0)
    night = ["gn", "gud nite", "good night", "gn sweet dreams", "nyt nyt", "shubh ratri", "gn yaar", "good nyt"]
    thanks = ["thx", "thanks a lot", "thank u", "tysm", "shukriya", "dhanyavaad", "thanku bhai", "thnx"]
    hungry = ["bahut bhook lagi hai", "bohot bhuk lagi", "so hungry", "starving", "bhook lagi", "pasikuthu da"]
    texts, stickers = [], []
    for _ in range(6):
        for group, sticker in ((night, "moon"), (thanks, "pray"), (hungry, "plate")):
            for text in group:
                texts.append(text if rng.random() < 0.5 else f"{text} {rng.choice(['yaar', 'lol', 'da', 'na'])}")
                stickers.append(sticker)
    trained = train_head(texts, stickers, max_epochs=40, batch_size=32, seed=0)
    head = trained.head
    assert set(head.labels) == {"moon", "plate", "pray"}
    p = head.probabilities(["gn bro", "thx yaar", "bhook lagi hai yaar"])
    assert [head.labels[i] for i in p.argmax(axis=1)] == ["moon", "pray", "plate"]
    assert trained.epochs >= 1 and len(trained.held_out_losses) >= trained.epochs
    np.testing.assert_allclose(head.prior.sum(), 1.0, rtol=1e-6)


def test_files_round_trip_and_a_changed_file_is_refused(tmp_path: Path) -> None:
    head = _head([5, 2], [[1.0, 2.0], [3.0, 4.0]], ("a", "b"))
    save_head(head, tmp_path / "head")
    loaded = load_head(tmp_path / "head")
    assert loaded.labels == head.labels
    np.testing.assert_array_equal(loaded.weights, head.weights)
    np.testing.assert_array_equal(loaded.rows, head.rows)
    (tmp_path / "head" / "head.npz").write_bytes(b"garbage")
    with pytest.raises(HeadError, match="checksum"):
        load_head(tmp_path / "head")
    with pytest.raises(HeadError, match="not a sticker head"):
        load_head(tmp_path / "nothing")
