"""Reading (message, sticker) pairs files: every bad line is reported with its line number and
skipped; a file with nothing usable is refused; the evaluation's metrics on known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tastemaker.training.evaluation.sticker_quality import Ranked, macro_f1, quality
from tastemaker.training.modeling.sticker_pairs import PairsError, read_pairs

CATALOG = {"moon", "pray", "cake"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"text": "", "sticker_id": "moon"}', "`text` is missing or empty"),
        ('{"text": "   ", "sticker_id": "moon"}', "`text` is missing or empty"),
        ('{"sticker_id": "moon"}', "`text` is missing or empty"),
        ('{"text": "gn"}', "names no sticker"),
        ('{"text": "gn", "sticker_id": "rocket"}', "sticker 'rocket' is not in the catalog"),
        ('{"text": "gn", "stickers": []}', "a sticker id is empty"),
        ('{"text": "gn", "stickers": ["moon", 3]}', "a sticker id is empty or not a string"),
        ('{"text": "gn", "sticker_id": "moon", "language": "fr"}', "`language` must be one of"),
    ],
)
def test_a_bad_line_is_reported_with_its_number_and_skipped(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(f'{{"text": "gn", "sticker_id": "moon"}}\n\n{line}\n{{"text": "thx", "stickers": ["pray"]}}\n')
    read = read_pairs(path, CATALOG)
    assert [p.text for p in read.pairs] == ["gn", "thx"]
    assert len(read.problems) == 1 and read.problems[0].startswith("line 3: ") and reason in read.problems[0]
    assert "skipped 1 of 3 lines" in read.summary()


def test_several_fitting_stickers_and_a_language(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    rows = [{"text": "happy bday", "stickers": ["cake", "cake", "moon"], "language": "en"}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    (pair,) = read_pairs(path, CATALOG).pairs
    assert pair.sticker_ids == ("cake", "moon") and pair.language == "en" and pair.line == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [("", "holds no pair"), ("{broken\n{}\n", "skipped 2 of 2 lines (line 1: not JSON"), (b"\xff\xfe", "cannot read")],
)
def test_a_file_with_nothing_usable_is_refused(tmp_path: Path, content: str | bytes, reason: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(PairsError, match=reason.replace("(", r"\(")):
        read_pairs(path, CATALOG)


def test_macro_f1_equals_the_textbook_value() -> None:
    truth, predicted = ["a", "a", "b", "b"], ["a", "c", "b", "a"]
    # a: tp 1, fp 1, fn 1 → 0.5; b: tp 1, fn 1 → 2/3; c: fp 1 → 0
    assert macro_f1(truth, predicted) == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)


def test_quality_of_known_ranks() -> None:
    ranked = Ranked(np.array([0, 3, 12]), ["a", "x", "y"], ["a", "b", "c"])
    q = quality(ranked)
    assert (q.messages, q.hit_at_1, q.hit_at_10) == (3, pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert q.mrr == pytest.approx((1 + 1 / 4 + 1 / 13) / 3)
