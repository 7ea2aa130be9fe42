"""The sticker encoder retrained from its own logs: (message, sent sticker) pairs weighted by the
inverse of the logged propensity, worked by hand, and a training run where the correction
changes which sticker a new word means."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastemaker.stickers.catalog import read_catalog
from tastemaker.training.modeling.sticker_logs import LoggedPair, logged_pairs
from tastemaker.training.modeling.sticker_training import train_encoder
from tastemaker.v1 import records_pb2
from tests.support.stickers import CATALOG, WORDS


def _sticker_decision(i: int, message: str, shown: dict[str, float], sent: list[str]) -> records_pb2.RewardedDecision:
    decision = records_pb2.DecisionLog(decision_id=f"s-{i}", surface="stickers", context={"message": message})
    row = decision.shown.add(shelf_id="stickers", position=0, propensity=1.0)
    for position, (sticker_id, propensity) in enumerate(shown.items()):
        row.cards.add(card_id=sticker_id, position=position, propensity=propensity)
    outcomes = [records_pb2.Outcome(decision_id=decision.decision_id, item_id=s, reward=1.0) for s in sent]
    return records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(sent)))


def test_pairs_by_hand() -> None:
    logs = [
        _sticker_decision(0, "good night", {"moon": 0.5, "star": 0.05}, sent=["moon"]),
        _sticker_decision(1, "good night", {"moon": 0.5, "star": 0.05}, sent=["star", "sun"]),  # sun: not shown
        _sticker_decision(2, "", {"moon": 0.5}, sent=["moon"]),  # no message logged
    ]
    home = records_pb2.RewardedDecision(decision=records_pb2.DecisionLog(surface="home"))
    pairs = logged_pairs([*logs, home], clip=10.0)
    # raw weights 1/0.5 = 2 and min(1/0.05, 10) = 10, scaled to mean 1
    assert [(p.message, p.sticker_id) for p in pairs] == [("good night", "moon"), ("good night", "star")]
    np.testing.assert_allclose([p.weight for p in pairs], [2 / 6, 10 / 6])
    np.testing.assert_allclose([p.weight for p in logged_pairs(logs, clip=None)], [2 / 11, 20 / 11])
    with pytest.raises(ValueError, match="clip"):
        logged_pairs(logs, clip=0.5)


@pytest.mark.timeout(1200)  # two trainings: minutes on a slow day; a hang guard, not a speed check
def test_the_propensity_correction_changes_what_a_new_word_means() -> None:
    """Users typing "zorblax" are shown the first sticker nearly always (μ = 0.9) and send it 60 times;
    the second is shown rarely (μ = 0.1) yet sent 30 times: per showing, far the better fit. Trained
    on the raw pairs the encoder maps "zorblax" to the first; with the weights, to the second."""
    if not CATALOG.is_file():
        pytest.fail(f"{CATALOG} is missing: run `make stickers-catalog`")
    catalog = read_catalog(CATALOG)
    subset = [s for s in catalog if any(w in s.phrases["en"].name for w in WORDS[:8])]
    favoured, better = subset[0].sticker_id, subset[1].sticker_id
    shown = {favoured: 0.9, better: 0.1}
    logs = [_sticker_decision(i, "zorblax", shown, sent=[favoured]) for i in range(60)]
    logs += [_sticker_decision(60 + i, "zorblax", shown, sent=[better]) for i in range(30)]
    weighted = logged_pairs(logs, clip=10.0)
    unweighted = [LoggedPair(p.message, p.sticker_id, 1.0) for p in weighted]

    def top(pairs: list[LoggedPair]) -> str:
        trained = train_encoder(subset, version="t", epochs=6, logged=pairs, batch_size=512, dim=64)
        assert trained.logged_pairs == 90
        similarity = trained.encoder.stickers(subset) @ trained.encoder.messages(["zorblax"])[0]
        ranked = [subset[i].sticker_id for i in np.argsort(-similarity)]
        return min((favoured, better), key=ranked.index)

    assert top(unweighted) == favoured
    assert top(weighted) == better


def test_train_from_logs_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tastemaker.cli import main
    from tastemaker.records.log_files import write_export
    from tastemaker.stickers.catalog import write_catalog

    catalog = read_catalog(CATALOG)[:60]
    write_catalog(catalog, tmp_path / "c.jsonl")
    export = tmp_path / "rewarded.jsonl"
    write_export([_sticker_decision(0, "zorblax", {catalog[0].sticker_id: 0.5}, [catalog[0].sticker_id])], export)
    assert main(["stickers", "train", "--catalog", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "b"),
                 "--epochs", "1", "--logs", str(export)]) == 0  # fmt: skip
    assert "(1 from the logs)" in capsys.readouterr().out
    write_export([records_pb2.RewardedDecision(decision=records_pb2.DecisionLog(surface="home"))], export)
    assert main(["stickers", "train", "--catalog", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "b"),
                 "--epochs", "1", "--logs", str(export)]) == 2  # fmt: skip
    assert "no sticker sent" in capsys.readouterr().err
    assert main(["stickers", "train", "--catalog", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "b"),
                 "--logs", str(export), "--ips-clip", "0.5"]) == 2  # fmt: skip
    assert "clip" in capsys.readouterr().err
    assert main(["stickers", "train", "--catalog", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "b"),
                 "--logs", str(tmp_path / "missing.parquet")]) == 2  # fmt: skip
    assert "no such file" in capsys.readouterr().err
    for flag in ("--batch-size", "--dim"):
        assert main(["stickers", "train", "--catalog", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "b"),
                     flag, "0"]) == 2  # fmt: skip
        assert f"{flag} must be positive, got 0" in capsys.readouterr().err
