"""`tastemaker stickers train --pairs` then `stickers evaluate`, as a user runs them, on a custom
catalog of 20 stickers with one that is no emoji: the bundle learns the pairs' words, serves them,
and bad input is a line-numbered warning or exit 2 with one line — never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tastemaker.cli import main
from tastemaker.stickers.bundle import load_bundle
from tastemaker.stickers.catalog import Phrases, Sticker, read_catalog, write_catalog
from tests.support.stickers import CATALOG

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.timeout(600)

#: (what people write, the sticker they send): words no catalog phrase holds
CHAT = {
    "emoji-1f634": ["gn", "gud nite", "good nyt", "shubh ratri", "nyt nyt all", "so sleepy gn"],
    "emoji-1f64f": ["thx", "thanks a ton", "tysm", "shukriya", "dhanyavaad ji", "thanku"],
    "team-mascot": ["go team", "we won", "matchday", "up the blues", "come on lads", "what a goal"],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not CATALOG.is_file():
        pytest.fail(f"{CATALOG} is missing: run `make stickers-catalog`")
    directory = tmp_path_factory.mktemp("pairs")
    cldr = {s.sticker_id: s for s in read_catalog(CATALOG)}
    mascot = Sticker("team-mascot", "", "club", {"en": Phrases("club mascot", ("mascot", "club", "badge"))})
    chosen = [cldr[i] for i in ("emoji-1f634", "emoji-1f64f")] + [mascot]
    chosen += [s for s in list(cldr.values())[:200:12] if s.sticker_id not in CHAT][: 20 - len(chosen)]
    write_catalog(chosen, directory / "catalog.jsonl")
    lines = [json.dumps({"text": f"{text}{suffix}", "sticker_id": sid})
             for sid, texts in CHAT.items() for text in texts for suffix in ("", " yaar", " lol", "!!")]  # fmt: skip
    lines.insert(3, "{broken json")
    lines.insert(7, json.dumps({"text": "", "sticker_id": "emoji-1f634"}))
    lines.insert(9, json.dumps({"text": "hi", "sticker_id": "no-such-sticker"}))
    (directory / "train.jsonl").write_text("\n".join(lines) + "\n")
    held = [("gn everyone", "emoji-1f634", "en"), ("thx a lot", "emoji-1f64f", "en"), ("we won!!", "team-mascot", "en")]
    (directory / "dev.jsonl").write_text(
        "\n".join(json.dumps({"text": t, "sticker_id": s, "language": lang}) for t, s, lang in held) + "\n"
    )
    return {"catalog": directory / "catalog.jsonl", "train": directory / "train.jsonl",
            "dev": directory / "dev.jsonl", "model": directory / "model"}  # fmt: skip


@pytest.fixture(scope="module")
def trained(files: dict[str, Path]) -> Path:
    code = main(["stickers", "train", "--catalog", str(files["catalog"]), "--pairs", str(files["train"]),
                 "--out", str(files["model"]), "--epochs", "2", "--batch-size", "512",
                 "--head-weight", "0.8"])  # fmt: skip
    assert code == 0
    return files["model"]


def test_train_reports_bad_lines_by_number_and_learns_the_rest(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["stickers", "train", "--catalog", str(files["catalog"]), "--pairs", str(files["train"]),
                 "--out", str(files["model"].with_name("again")), "--epochs", "1", "--batch-size", "512"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    assert "skipped 3 of 75 lines" in err
    assert "line 4: not JSON" in err and "line 8: `text` is missing or empty" in err
    assert "line 10: sticker 'no-such-sticker' is not in the catalog" in err


def test_the_bundle_serves_what_people_send_and_evaluate_prints_the_table(
    trained: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = load_bundle(trained)
    assert bundle.head is not None and set(bundle.head.labels) == set(CHAT) and bundle.head_weight == 0.8
    capsys.readouterr()
    assert main(["stickers", "suggest", "we won", "--model", str(trained), "-k", "1", "--seed", "0"]) == 0
    assert "team-mascot" in capsys.readouterr().out  # the sticker that is no emoji, found by what fans say
    assert main(["stickers", "evaluate", "--model", str(trained), "--pairs", str(files["dev"])]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[1:3]
    assert "model hit@1 @10 MRR F1" in header and "BM25" in header
    values = row.split()
    assert values[0] == "en" and values[1] == "3"
    assert float(values[2]) == 1.0  # every held-out message's sticker comes first
    assert float(values[6]) < 1.0  # BM25 over the catalog's phrases cannot know "gn" or "thx"


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["evaluate", "--model", "{model}", "--pairs", "{broken}"],
         "--pairs {broken}: skipped 1 of 1 lines (line 1: not JSON"),
        (["evaluate", "--model", "{nowhere}", "--pairs", "{dev}"], "--model {nowhere}:"),
        (["train", "--catalog", "{catalog}", "--pairs", "{broken}", "--out", "{nowhere}"], "line 1: not JSON"),
        (["train", "--catalog", "{catalog}", "--pairs", "{dev}", "--out", "{nowhere}", "--head-weight", "2"],
         "--head-weight must be in [0, 1], got 2.0"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(
    trained: Path,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    reason: str,
) -> None:
    names = {"model": trained, "broken": tmp_path / "broken.jsonl", "nowhere": tmp_path / "nowhere", **files}
    names["broken"].write_text("{broken\n")
    fill = {k: str(v) for k, v in names.items()}
    capsys.readouterr()
    assert main(["stickers", *(a.format(**fill) for a in argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tastemaker: error: ") and "\n" not in err and "Traceback" not in err
    assert reason.format(**fill) in err


def test_the_message_being_answered_is_context(trained: Path) -> None:
    """A reply with no words of its own ("same to you") gets its stickers from the message it
    answers; the decision logs that message."""
    from tastemaker.bandits.strategies import EpsilonGreedy
    from tastemaker.services.stickers import StickerService

    service = StickerService(load_bundle(trained), EpsilonGreedy(0.0))
    night = service.suggest("u", "same to you", "en", 3, previous_message="gn everyone, sweet dreams")
    fans = service.suggest("u", "same to you", "en", 3, previous_message="we won the final!!")
    assert night.suggestions[0].sticker_id == "emoji-1f634"
    assert fans.suggestions[0].sticker_id == "team-mascot"
    assert night.decision.context["previous_message"] == "gn everyone, sweet dreams"
    alone = service.suggest("u", "same to you", "en", 3)
    assert "previous_message" not in alone.decision.context


def test_sticker_exploration_has_a_setting_of_its_own(trained: Path) -> None:
    """TASTEMAKER_STICKER_EPSILON, not the home page's TASTEMAKER_EPSILON, sets SuggestStickers'
    exploration: at 0 every suggestion is certain (propensity 1), whatever the home ε."""
    import threading

    import redis

    from tastemaker.services.bootstrap import sticker_service_for
    from tastemaker.services.config import Settings

    class Publisher:
        def publish(self, *args: object) -> bool:
            return True

    unreachable = redis.Redis(port=1, socket_connect_timeout=0.01)  # sends degrade to 0, as in an outage
    for sticker_epsilon, certain in ((0.0, True), (1.0, False)):
        settings = Settings(sticker_model=str(trained), epsilon=0.5, sticker_epsilon=sticker_epsilon)
        service = sticker_service_for(settings, Publisher(), "t", unreachable, threading.Event())  # type: ignore[arg-type]
        assert service is not None
        result = service.suggest("u", "gn", "en", 3)
        assert all(s.propensity == 1.0 for s in result.suggestions) is certain


def test_a_retrained_candidate_keeps_the_chat_head_it_descends_from(trained: Path, tmp_path: Path) -> None:
    """`retrain --surface stickers` trains a new encoder from logged sends; the chat head, learned
    from chat pairs that are not in the logs, carries over with its weight."""
    from tastemaker.models.registry import STICKERS_KIND
    from tastemaker.training.lifecycle.registry import Registry
    from tastemaker.training.lifecycle.sticker_retrain import retrain_stickers
    from tastemaker.v1 import records_pb2

    parent = load_bundle(trained)
    ids = list(parent.catalog)[:5]
    decisions = []
    for i in range(120):
        decision = records_pb2.DecisionLog(decision_id=f"d{i}", surface="stickers", served_at_ms=i,
                                           context={"message": "gn" if i % 2 else "we won"})  # fmt: skip
        row = decision.shown.add(shelf_id="stickers", position=0, propensity=1.0)
        row.card_candidates.item_ids.extend(ids)
        row.card_candidates.scores.extend([0.0] * len(ids))
        for position, sticker in enumerate(ids[:3]):
            row.cards.add(card_id=sticker, position=position, propensity=0.2)
        sent = [records_pb2.Outcome(decision_id=f"d{i}", item_id=ids[i % 3], reward=1.0)]
        decisions.append(records_pb2.RewardedDecision(decision=decision, outcomes=sent, reward=1.0))
    registry = Registry(tmp_path / "registry", STICKERS_KIND)
    summary = retrain_stickers(decisions, registry, baseline=trained, promote=False, say=lambda _: None,
                               train_options={"epochs": 1, "batch_size": 512})  # fmt: skip
    candidate = load_bundle(registry.path(summary.version))
    assert candidate.head is not None and parent.head is not None
    assert candidate.head.labels == parent.head.labels and candidate.head_weight == parent.head_weight
    assert candidate.encoder.version != parent.encoder.version
