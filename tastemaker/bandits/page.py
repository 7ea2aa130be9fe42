"""The two-level draw of a home page as one pure function and one frozen value.

`draw_page` scores the candidate shelves with the reward model, draws the shelf row, scores the
chosen shelves' cards in one call and draws every card row (`rows.rank_rows`, all at once when no
card is a candidate of two shown shelves; else row by row, so a card shown higher up leaves the
rows below); then, for each shown shelf with explanation variants, it scores the shelf under each
(the reward model sees the explanation) and draws one (one more row of `rank_rows`, k = 1), so the
page shows (shelf, explanation) pairs with P(pair at row j) = P(shelf at j)·P(explanation | shelf).
It returns a `HomePage`: the rows with their ids, positions, scores and propensities.

What the linear strategies see of a candidate (`PageInputs.online`): [1, log(1 + engagement)], or
`OnlineFeatures` (the request's context and the user's activity crossed with the caller's
candidate features and the explanation, hashed to a fixed width).
Everything else a request makes — the packed and the written-out decision log, the response, the
metrics, the shadow's judgement — is derived from that one value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from tastemaker.bandits.catalog import ShelfCandidates
from tastemaker.bandits.online_features import OnlineFeatures
from tastemaker.bandits.reward_features import COUNT_TYPES
from tastemaker.bandits.reward_models import RewardModel
from tastemaker.bandits.rows import rank_rows
from tastemaker.bandits.strategies import Candidates, Placement, Strategy, rank_with_constraints


@dataclass(frozen=True)
class PageRow:
    """One shown shelf and its cards."""

    #: the shelf's index among the request's candidate shelves
    shelf: int
    shelf_id: str
    #: the row it is shown at (0, 1, 2, ...)
    position: int
    score: float
    propensity: float
    #: the cards the row was drawn from (the shelf's, less excluded ones and those shown above), and their scores
    card_candidates: tuple[str, ...]
    card_scores: np.ndarray
    #: the shown cards in order, with their positions, scores and propensities (conditional on the shelf)
    cards: tuple[str, ...]
    card_positions: tuple[int, ...]
    shown_card_scores: tuple[float, ...]
    card_propensities: tuple[float, ...]
    #: P(this row's cards exactly as shown | the shelf)
    cards_ranking_propensity: float
    #: the explanation the row is shown under ("" when the shelf has none), P(it | the shelf), and
    #: every explanation variant of the shelf with its score
    explanation_id: str = ""
    explanation_propensity: float = 1.0
    explanation_candidates: tuple[str, ...] = ()
    explanation_scores: tuple[float, ...] = ()


@dataclass(frozen=True)
class HomePage:
    """A drawn page: what is shown, with every propensity, and the model that scored it."""

    rows: tuple[PageRow, ...]
    #: P(the shelf row exactly as shown); pinned shelves are certain
    ranking_probability: float
    #: every candidate shelf's score (float32 precision, held as float64)
    shelf_scores: np.ndarray
    #: (row shown, shelf id) of the pinned shelves on the page
    pinned: tuple[tuple[int, str], ...]
    model_version: str

    def propensities(self) -> list[float]:
        """Every shown shelf's and card's propensity."""
        out: list[float] = []
        for row in self.rows:
            out.append(row.propensity)
            out.extend(row.card_propensities)
            if row.explanation_id:
                out.append(row.explanation_propensity)
        return out


@dataclass(frozen=True)
class PageInputs:
    """What one request gives the draw: candidates, the user's features for them, constraints."""

    shelves: Sequence[ShelfCandidates]
    #: the user's activity per event type (`reward_features.COUNT_TYPES`)
    counts: np.ndarray
    #: the user's engagement with each candidate shelf, and with each shelf's cards
    shelf_engagement: np.ndarray
    card_engagement: Sequence[np.ndarray]
    context: Mapping[str, str]
    max_shelves: int
    max_cards: int
    #: 0-based row → shelf id that must be there
    pinned: tuple[tuple[int, str], ...] = ()
    excluded: frozenset[str] = frozenset()
    #: what the linear strategies see (None: [1, log(1 + engagement)]; module docstring), and the
    #: context they see (the one the decision log keeps, so the learner sees the same; None: `context`)
    online: OnlineFeatures | None = None
    online_context: Mapping[str, str] | None = None

    def linear_rows(
        self,
        level: str,
        ids: Sequence[str],
        engagement: np.ndarray,
        features: Sequence[Mapping[str, float]] | None,
        explanations: Sequence[str] | None = None,
    ) -> np.ndarray:
        """The linear strategies' rows for these candidates (`online_rows`; `features` may be None
        when `online` is: [1, log(1 + engagement)] reads none)."""
        context = self.context if self.online_context is None else self.online_context
        return online_rows(self.online, level, ids, engagement, context, features, self.counts, explanations)


def user_features(counts: np.ndarray) -> dict[str, float]:
    """The user's activity as `OnlineFeatures` crosses it: log(1 + count) per event type seen."""
    return {f"count:{t}": float(np.log1p(c)) for t, c in zip(COUNT_TYPES, counts.tolist(), strict=True) if c > 0}


def online_rows(
    online: OnlineFeatures | None,
    level: str,
    ids: Sequence[str],
    engagement: np.ndarray,
    context: Mapping[str, str],
    features: Sequence[Mapping[str, float]] | None,
    counts: np.ndarray,
    explanations: Sequence[str] | None = None,
) -> np.ndarray:
    """What the linear strategies see of each candidate — serving's and the learner's one way:
    [1, log(1 + engagement)] without `online`, else its encoding (with the user's `counts`)."""
    if online is None:
        return linear_features(engagement)
    return online.encode(level, ids, engagement, context, features, user_features(counts), explanations)


def float32_scores(scores: np.ndarray) -> np.ndarray:
    """Scores at the precision models compute them (float32), held as float64: the packed decision
    log stores them as float32 exactly."""
    return np.asarray(scores, dtype=np.float32).astype(np.float64)


def linear_features(engagement: np.ndarray) -> np.ndarray:
    """What the linear strategies (LinUCB, Thompson) see of a candidate: [1, log(1 + engagement)]."""
    return np.column_stack([np.ones(len(engagement)), np.log1p(engagement)])


def draw_page(
    model: RewardModel,
    shelf_strategy: Strategy,
    card_strategy: Strategy,
    inputs: PageInputs,
    rng: np.random.Generator,
    explanation_strategy: Strategy | None = None,
) -> HomePage:
    """Score with `model`, explore with the strategies (the explanations with `explanation_strategy`,
    by default the shelves'), and lay out the page with every propensity."""
    shelves = inputs.shelves
    shelf_ids = tuple(s.shelf_id for s in shelves)
    shelf_scores = float32_scores(
        model.score_level("shelf", inputs.counts, list(shelf_ids), inputs.shelf_engagement, inputs.context)
    )
    shelf_candidates = Candidates(
        shelf_ids,
        shelf_scores,
        inputs.linear_rows(
            "shelf", shelf_ids, inputs.shelf_engagement, [s.features for s in shelves] if inputs.online else None
        ),
    )
    if inputs.pinned or inputs.excluded:
        placement = rank_with_constraints(
            shelf_strategy, shelf_candidates, inputs.max_shelves, rng, dict(inputs.pinned), inputs.excluded
        )
    else:  # one row, drawn as the card rows are
        placement = rank_rows(shelf_strategy, [shelf_candidates], inputs.max_shelves, rng)[0]
    index_of = {shelf_id: i for i, shelf_id in enumerate(shelf_ids)}
    chosen = [index_of[shelf_id] for shelf_id in placement.ids]
    rows, card_placements = _card_rows(model, card_strategy, inputs, chosen, rng)
    explained = _explanations(model, explanation_strategy or shelf_strategy, inputs, chosen, rng)
    page_rows = tuple(
        _row(
            chosen[r],
            shelf_id,
            position,
            float(shelf_scores[chosen[r]]),
            propensity,
            rows[r],
            card_placements[r],
            explained.get(r),
        )  # fmt: skip
        for r, (shelf_id, position, propensity) in enumerate(
            zip(placement.ids, placement.positions, placement.propensities.tolist(), strict=True)
        )
    )
    return HomePage(page_rows, placement.ranking_probability, shelf_scores, placement.pinned, model.version)


def _explanations(
    model: RewardModel, strategy: Strategy, inputs: PageInputs, chosen: list[int], rng: np.random.Generator
) -> dict[int, tuple[Candidates, Placement]]:
    """For each shown row whose shelf has explanation variants: the variants scored (the shelf as
    the reward model sees it under each) and one drawn; all rows in one pass (`rank_rows`, k = 1)."""
    rows: list[int] = [r for r, i in enumerate(chosen) if inputs.shelves[i].explanation_ids]
    if not rows:
        return {}
    candidates = []
    for r in rows:
        shelf = inputs.shelves[chosen[r]]
        variants = shelf.explanation_ids
        engagement = np.full(len(variants), inputs.shelf_engagement[chosen[r]])
        scores = float32_scores(
            model.score_level(
                "shelf", inputs.counts, [shelf.shelf_id] * len(variants), engagement, inputs.context,
                explanations=variants,
            )
        )  # fmt: skip
        x = inputs.linear_rows("explanation", variants, engagement, [shelf.features] * len(variants), variants)
        candidates.append(Candidates(variants, scores, x))
    placements = rank_rows(strategy, candidates, 1, rng)
    return {r: (c, p) for r, c, p in zip(rows, candidates, placements, strict=True)}


def _card_rows(
    model: RewardModel, strategy: Strategy, inputs: PageInputs, chosen: list[int], rng: np.random.Generator
) -> tuple[list[Candidates], list[Placement]]:
    """Every chosen shelf's cards scored in one call (a card's score depends on that card alone),
    then drawn: all rows at once when they cannot take each other's cards, else row by row."""
    card_lists = [inputs.shelves[i].card_ids for i in chosen]
    flat_ids = [card_id for cards in card_lists for card_id in cards]
    flat_engagement = (
        np.concatenate([inputs.card_engagement[i] for i in chosen]) if chosen else np.zeros(0, dtype=np.float64)
    )
    flat_scores = float32_scores(model.score_level("card", inputs.counts, flat_ids, flat_engagement, inputs.context))
    flat_features = inputs.linear_rows(
        "card", flat_ids, flat_engagement,
        [inputs.shelves[i].card_features.get(card_id, {}) for i in chosen for card_id in inputs.shelves[i].card_ids]
        if inputs.online else None,
    )  # fmt: skip
    starts = np.cumsum([0] + [len(cards) for cards in card_lists])

    def row(r: int, skip: frozenset[str] | set[str]) -> Candidates:
        """Shelf r's cards less `skip`, with their scores and linear features."""
        cards = card_lists[r]
        if skip:
            keep = [c for c, card_id in enumerate(cards) if card_id not in skip]
            at = starts[r] + np.array(keep, dtype=int)
            return Candidates(tuple(cards[c] for c in keep), flat_scores[at], flat_features[at])
        return Candidates(
            tuple(cards), flat_scores[starts[r] : starts[r + 1]], flat_features[starts[r] : starts[r + 1]]
        )

    if len(set(flat_ids)) == len(flat_ids):
        rows = [row(r, inputs.excluded) for r in range(len(chosen))]
        return rows, rank_rows(strategy, rows, inputs.max_cards, rng)
    shown_cards = set(inputs.excluded)  # never excluded cards, never one an earlier row already shows
    rows, placements = [], []
    for r in range(len(chosen)):
        rows.append(row(r, shown_cards))
        placements.append(rank_with_constraints(strategy, rows[-1], inputs.max_cards, rng))
        shown_cards.update(placements[-1].ids)
    return rows, placements


def _row(
    shelf: int,
    shelf_id: str,
    position: int,
    score: float,
    propensity: float,
    candidates: Candidates,
    cards: Placement,
    explained: tuple[Candidates, Placement] | None,
) -> PageRow:
    row = PageRow(
        shelf=shelf,
        shelf_id=shelf_id,
        position=position,
        score=score,
        propensity=propensity,
        card_candidates=candidates.ids,
        card_scores=candidates.scores,
        cards=tuple(cards.ids),
        card_positions=tuple(cards.positions),
        shown_card_scores=tuple(cards.scores[c] for c in cards.ids),
        card_propensities=tuple(cards.propensities.tolist()),
        cards_ranking_propensity=cards.ranking_probability,
    )
    if explained is None:
        return row
    variants, said = explained
    return replace(
        row,
        explanation_id=said.ids[0],
        explanation_propensity=float(said.propensities[0]),
        explanation_candidates=variants.ids,
        explanation_scores=tuple(variants.scores.tolist()),
    )
