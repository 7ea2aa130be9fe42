"""`OnlineFeatures`: a fixed width whatever the inputs, and every input (context, the caller's
features, the user's features, the explanation) moves the row; the richer simulator's context and
explanations change what a user clicks, and the default world is the one it always was."""

from __future__ import annotations

import numpy as np
import pytest

from tastemaker.bandits.online_features import OnlineFeatures
from tastemaker.bandits.simulator import SimulatedWorld

IDS = ("a", "b", "c")
ENGAGEMENT = np.array([0.0, 1.0, 3.0])


def test_rows_have_the_fixed_width_an_intercept_and_log_engagement() -> None:
    encoder = OnlineFeatures(width=10)
    many = [{f"f{j}": float(j) for j in range(50)} for _ in IDS]
    x = encoder.encode("card", IDS, ENGAGEMENT, {f"k{j}": "v" for j in range(20)}, many, {"u": 2.0}, ("e",) * 3)
    assert x.shape == (3, 12)
    assert np.all(x[:, 0] == 1.0)
    assert np.allclose(x[:, 1], np.log1p(ENGAGEMENT))
    assert np.array_equal(
        x, encoder.encode("card", IDS, ENGAGEMENT, {f"k{j}": "v" for j in range(20)}, many, {"u": 2.0}, ("e",) * 3)
    )


def test_each_input_moves_the_hashed_block() -> None:
    encoder = OnlineFeatures()
    base = encoder.encode("shelf", IDS, ENGAGEMENT)
    assert not base[:, 2:].any()
    variants = {
        "context": encoder.encode("shelf", IDS, ENGAGEMENT, {"hour": "night"}),
        "features": encoder.encode("shelf", IDS, ENGAGEMENT, None, [{"fresh": 1.0}] * 3),
        "user x features": encoder.encode("shelf", IDS, ENGAGEMENT, None, [{"fresh": 1.0}] * 3, {"taste": 2.0}),
        "explanation": encoder.encode("shelf", IDS, ENGAGEMENT, None, None, None, ("new-release",) * 3),
    }
    seen = [base]
    for name, x in variants.items():
        assert all(not np.array_equal(x, other) for other in seen), name
        seen.append(x)
    night, morning = (
        encoder.encode("shelf", IDS, ENGAGEMENT, {"hour": "night"}),
        encoder.encode("shelf", IDS, ENGAGEMENT, {"hour": "morning"}),
    )
    assert not np.array_equal(night, morning)


def test_a_width_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="width"):
        OnlineFeatures(width=0)


def test_the_default_world_has_no_context_or_explanation_effect() -> None:
    world = SimulatedWorld(seed=3)
    shown = [(world.shelf_id(0), [world.card_id(0, 0), world.card_id(0, 1)])]
    plain = world.expected_clicks("u", shown)
    assert world.expected_clicks("u", shown, context={"hour": "night", "device": "tv"}) == plain
    assert world.attention("u", None) == 1.0
    with pytest.raises(ValueError, match="unknown explanation"):
        world.explanation_shift("u", "because-you-played")


def test_in_the_richer_world_context_and_explanations_matter_per_user() -> None:
    explanations = ("because-you-played", "popular-near-you", "new-release")
    world = SimulatedWorld(seed=3, context_strength=0.5, explanations=explanations)
    shown = [(world.shelf_id(0), [world.card_id(0, c) for c in range(4)])]
    morning = world.expected_clicks("u", shown, context={"hour": "morning", "device": "phone"})
    night = world.expected_clicks("u", shown, context={"hour": "night", "device": "tv"})
    assert morning != night
    said = {e: world.expected_clicks("u", shown, explanations=[e]) for e in explanations}
    assert len(set(said.values())) == 3
    assert max(said, key=said.__getitem__) == world.best_explanation("u")
    best = {world.best_explanation(f"user-{i}") for i in range(50)}
    assert len(best) >= 2  # one explanation is not everyone's best
    context = {"hour": "evening", "device": "tablet"}
    oracle = world.oracle_page("u", 3, 4, context=context)
    value = world.expected_clicks("u", oracle, context=context, explanations=[world.best_explanation("u")] * 3)
    rng = np.random.default_rng(0)
    for _ in range(50):
        shelves = rng.permutation(world.n_shelves)[:3]
        page = [(world.shelf_id(s), [world.card_id(s, c) for c in rng.permutation(12)[:4]]) for s in shelves]
        said_page = [explanations[int(rng.integers(3))] for _ in page]
        assert world.expected_clicks("u", page, context=context, explanations=said_page) <= value + 1e-12
