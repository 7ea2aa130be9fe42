"""The packed decision log (layout 2): each id once, ≤ 4 KB for a 20×20 → 10×10 page, exact both
ways, and every offline reader gets the same numbers from it as from the written-out layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tastemaker.bandits.catalog import ShelfCandidates
from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_models import EngagementScorer
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy, LinearState, LinUCB, Softmax, Thompson
from tastemaker.features.learner import rows_of
from tastemaker.records.layout import (
    LAYOUT_PACKED,
    LAYOUT_WRITTEN_OUT,
    LayoutError,
    front_code,
    front_decode,
    pack,
    shown_ids,
    unpack,
)
from tastemaker.records.log_files import read_export, write_export
from tastemaker.services.home import HomeRankingService
from tastemaker.services.requests import HomeRequest
from tastemaker.training.evaluation.evaluate import evaluate, slate_data, slot_data
from tastemaker.training.lifecycle.validation import validate, window_stats
from tastemaker.training.modeling.reward_rows import training_rows
from tastemaker.v1 import records_pb2
from tests.support.fakes import FixedFeatures

STRATEGIES = {
    "epsilon-greedy": lambda: EpsilonGreedy(0.2),
    "softmax": lambda: Softmax(0.8),
    "linucb": lambda: LinUCB(LinearState(2), alpha=0.5),
    "thompson": lambda: Thompson(LinearState(2), n_samples=300),
}


def _service(
    world: SimulatedWorld, strategy: str, published: list[bytes], shelves: int, cards: int
) -> HomeRankingService:
    return HomeRankingService(
        features=FixedFeatures(world), catalog=world.catalog(), model=EngagementScorer(EngagementLinearModel()),
        strategy=STRATEGIES[strategy](), card_strategy=STRATEGIES[strategy](),
        publish=lambda topic, value, key, headers: published.append(value) or True, decisions_topic="decisions",
        default_max_shelves=shelves, default_max_cards=cards, reward_window_s=1.0, rng=np.random.default_rng(1),
    )  # fmt: skip


def _logs(strategy: str, n: int = 60) -> tuple[list[records_pb2.RewardedDecision], list[bytes]]:
    """Rewarded decisions as `rank` returns them (written out) and the bytes serving published,
    with a pinned shelf, an excluded shelf and card, and a card candidate of two shelves."""
    world = SimulatedWorld(n_shelves=8, cards_per_shelf=6, seed=3)
    published: list[bytes] = []
    service = _service(world, strategy, published, shelves=4, cards=3)
    shared_card = world.card_id(1, 0)
    candidates = tuple(
        ShelfCandidates(s.shelf_id, s.card_ids + ((shared_card,) if i == 3 else ()))
        for i, s in enumerate(world.catalog().shelves)
    )
    rng, out = np.random.default_rng(2), []
    for i in range(n):
        request = HomeRequest(
            f"user-{i % 9}", {"device": "ios"}, candidates if i % 2 else (), 0, 0,
            pinned=((1, world.shelf_id(2)),), excluded=frozenset({world.shelf_id(5), world.card_id(0, 0)}),
        )  # fmt: skip
        decision = service.rank(request)
        clicks = world.respond(
            request.user_id, [(s.shelf_id, [c.card_id for c in s.cards]) for s in decision.shown], rng
        )
        outcomes = [
            records_pb2.Outcome(decision_id=decision.decision_id, item_id=c.card_id, reward=1.0) for c in clicks
        ]
        out.append(records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(clicks))))
    return out, published


@given(
    st.lists(
        st.text(
            alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x10FFF, exclude_categories=("Cs",)), max_size=60
        )
    )
)
def test_front_coding_restores_every_id(ids: list[str]) -> None:
    assert front_decode(front_code(ids)) == ids


def test_front_coding_shares_prefixes_and_caps_them() -> None:
    ids = ["s03-card-16", "s03-card-17", "x" * 50, "x" * 49 + "y"]
    coded = front_code(ids)
    assert front_decode(coded) == ids
    # one leading byte per id; "s03-card-1" and 30 (the cap) of the 49 shared x's are not repeated
    assert coded == b"\x01s03-card-16" + b"\x0b7" + b"\x01" + b"x" * 50 + b"\x1f" + b"x" * 19 + b"y"


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_serving_publishes_packed_decisions_that_unpack_to_what_it_decided(strategy: str) -> None:
    written, published = _logs(strategy)
    assert len(published) == len(written)
    for rewarded, value in zip(written, published, strict=True):
        packed = records_pb2.DecisionLog.FromString(value)
        assert packed.layout == LAYOUT_PACKED and not packed.shown and not packed.feature_names
        assert shown_ids(packed) == shown_ids(rewarded.decision)
        assert unpack(packed) == rewarded.decision
        assert pack(rewarded.decision).SerializeToString() == value  # one builder for both paths
    # the page's shape was exercised: subsets of a shelf's cards (excluded or taken by an earlier row)
    assert any(len(s.card_candidates.item_ids) < 6 for r in written for s in r.decision.shown)


def test_a_20x20_page_packs_into_4_kb_from_25() -> None:
    world = SimulatedWorld(n_shelves=20, cards_per_shelf=20, seed=3)
    for strategy in STRATEGIES:
        published: list[bytes] = []
        decision = _service(world, strategy, published, shelves=10, cards=10).rank(
            HomeRequest("user-1", {"device": "ios", "country": "IN"}, (), 0, 0)
        )
        written = len(decision.SerializeToString())
        assert len(decision.shown) == 10 and all(len(s.cards) == 10 for s in decision.shown)
        assert len(published[0]) <= 4096 < 20_000 < written, (strategy, len(published[0]), written)


def test_what_cannot_be_packed_exactly_stays_written_out() -> None:
    world = SimulatedWorld(n_shelves=3, cards_per_shelf=3, seed=0)
    published: list[bytes] = []
    service = _service(world, "epsilon-greedy", published, shelves=2, cards=2)
    odd = (ShelfCandidates("tab\there", ("a", "b")), ShelfCandidates("plain", ("c", "d")))
    decision = service.rank(HomeRequest("u", {}, odd, 0, 0))
    assert records_pb2.DecisionLog.FromString(published[0]).layout == LAYOUT_WRITTEN_OUT
    assert pack(decision) is decision
    changed = records_pb2.DecisionLog()
    changed.CopyFrom(decision)
    changed.shown[0].cards[0].score += 0.5  # no longer derivable from its candidate's score
    assert pack(changed) is changed
    changed.CopyFrom(decision)
    changed.shelf_candidates.scores[0] = 0.1  # not a float32
    assert pack(changed) is changed


def test_a_corrupt_packed_decision_is_refused_with_a_reason() -> None:
    _, published = _logs("epsilon-greedy", n=1)
    packed = records_pb2.DecisionLog.FromString(published[0])
    packed.packed.shown_shelves[0] = 99
    with pytest.raises(LayoutError, match="99"):
        unpack(packed)
    truncated = records_pb2.DecisionLog.FromString(published[0])
    truncated.packed.ids = truncated.packed.ids[:-5]
    with pytest.raises(LayoutError):
        shown_ids(truncated)
    unknown = records_pb2.DecisionLog.FromString(published[0])
    unknown.packed.feature_schema = "home/9"
    with pytest.raises(LayoutError, match="home/9"):
        unpack(unknown)


def _packed(logs: list[records_pb2.RewardedDecision]) -> list[records_pb2.RewardedDecision]:
    out = []
    for rewarded in logs:
        copy = records_pb2.RewardedDecision()
        copy.CopyFrom(rewarded)
        copy.decision.CopyFrom(pack(rewarded.decision))
        assert copy.decision.layout == LAYOUT_PACKED
        out.append(copy)
    return out


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_both_layouts_give_every_offline_job_identical_numbers(tmp_path: Path, suffix: str) -> None:
    """The same decisions exported written out and packed: evaluation, retraining's validation and
    rows, the OBP parity inputs (slot and slate arrays) and the learner's rows are identical."""
    logs, _ = _logs("softmax", n=80)
    write_export(logs, tmp_path / f"old{suffix}")
    write_export(_packed(logs), tmp_path / f"new{suffix}")
    old, new = read_export(tmp_path / f"old{suffix}"), read_export(tmp_path / f"new{suffix}")
    assert (tmp_path / f"new{suffix}").stat().st_size < (tmp_path / f"old{suffix}").stat().st_size
    policies = ["logging", "greedy", "uniform-random"]
    assert json.dumps(evaluate(old, policies), sort_keys=True) == json.dumps(evaluate(new, policies), sort_keys=True)
    assert validate(old) == validate(new) and window_stats(old) == window_stats(new)
    for one, other in [(slot_data(old), slot_data(new))] + [
        (slate_data(old, "greedy", cascade)[0], slate_data(new, "greedy", cascade)[0]) for cascade in (False, True)
    ]:
        for field in ("rewards", "logged_propensity", "mask"):
            np.testing.assert_array_equal(getattr(one, field), getattr(other, field))
    for cascade in (False, True):
        np.testing.assert_array_equal(slate_data(old, "greedy", cascade)[1], slate_data(new, "greedy", cascade)[1])
    for a, b in zip(training_rows(old), training_rows(new), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(old, new, strict=True):
        assert repr(rows_of(a)) == repr(rows_of(b))
