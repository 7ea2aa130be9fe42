"""The decision log's two layouts, and the one way between them.

Written out (layout 0) a 20×20 → 10×10 home decision is about 25 KB: every id appears in
`feature_names`, in `candidates` and again in each shown shelf's `card_candidates`, and every
number is a tagged double. Packed (layout 2, `PackedPage`) each id is written once, front-coded,
in one table; the feature names are a versioned schema over that table; numbers are packed
arrays (engagement counts as varints, scores as the float32 serving computes them); the page
refers to the table by index.

`packed_home_page` builds the packed page from what the ranker laid out (serving's hot path);
`pack` packs a written-out decision through the same builder; `unpack` restores the written-out
form. Both directions are exact: `unpack(pack(d)) == d`, and a decision that could not be
restored exactly (an id holding a control character, a score that is not a float32, a shown card whose
score differs from its candidate's) is left written out, so a reader never sees a difference.
Sticker decisions stay written out (they are small). Serving publishes packed home decisions;
every reader of `tastemaker.decisions` or `tastemaker.rewarded` unpacks where it decodes (the
joiner keeps a decision's bytes as they came).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tastemaker.bandits.catalog import ShelfCandidates
from tastemaker.bandits.page import PageRow
from tastemaker.records.feature_vector import home_names
from tastemaker.v1 import api_pb2, records_pb2

LAYOUT_WRITTEN_OUT = 0
LAYOUT_PACKED = 2
#: the home feature vector's names: counts, then `shelf:<id>` per candidate shelf, `card:<id>` per card
HOME_SCHEMA = "home/1"

#: how many leading bytes an id may share with the previous one in the id table (0x01 + n < 0x20)
MAX_SHARED = 30
_MARKS = [bytes([1 + n]) for n in range(MAX_SHARED + 1)]
_MARK = re.compile(rb"([\x01-\x1f])")
_CONTROL = re.compile(r"[\x00-\x1f]")
_PACKED_FIELDS = ("feature_names", "feature_values", "candidates", "shelf_candidates", "shown")
#: the largest whole number a double holds exactly
_EXACT_INTEGERS = 2.0**53


class LayoutError(ValueError):
    """A packed record that does not unpack (a truncated table, an index out of range)."""


@dataclass(frozen=True)
class _Table:
    """One candidate set, front-coded once (a catalog's, or a client's usual candidates, repeat)."""

    ids: bytes
    shelf_ids: tuple[str, ...]
    card_slots: tuple[dict[str, int], ...]  # per shelf: card id → its index among the shelf's cards


def front_code(ids: Sequence[str]) -> bytes:
    """The ids front-coded (`PackedPage.ids`): per id, 0x01 + the bytes it shares with the previous
    id (at most MAX_SHARED), then the rest of its UTF-8 bytes. The ids must hold no byte below 0x20."""
    encoded = [i.encode() for i in ids]
    if not encoded:
        return b""
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    grid = np.full((len(encoded), int(lengths.max()) + 1), -1, dtype=np.int16)  # -1 pads past an id's end
    flat = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    rows = np.repeat(np.arange(len(encoded)), lengths)
    cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    grid[rows, cols] = flat
    differs = grid[1:] != grid[:-1]
    differs[:, -1] = True  # the last column is always padding: every match ends by it
    shared = np.minimum(np.argmax(differs, axis=1), np.minimum(lengths[1:], lengths[:-1]))
    shared = np.minimum(np.concatenate([[0], shared]), MAX_SHARED).tolist()
    return b"".join(_MARKS[n] + b[n:] for b, n in zip(encoded, shared, strict=True))


def front_decode(coded: bytes) -> list[str]:
    parts = _MARK.split(coded)
    if parts[0]:
        raise LayoutError("the id table does not start with an id's leading byte")
    out: list[str] = []
    previous = b""
    for mark, rest in zip(parts[1::2], parts[2::2], strict=True):
        keep = mark[0] - 1
        if keep > len(previous):
            raise LayoutError("an id shares more bytes with the previous id than it has")
        previous = previous[:keep] + rest
        out.append(previous.decode())
    return out


@lru_cache(maxsize=256)
def _table(shelves: tuple[ShelfCandidates, ...]) -> _Table | None:
    ids = [s.shelf_id for s in shelves] + [c for s in shelves for c in s.card_ids]
    if any(_CONTROL.search(i) for i in ids):
        return None
    slots = tuple({card_id: j for j, card_id in reversed(list(enumerate(s.card_ids)))} for s in shelves)
    return _Table(front_code(ids), tuple(s.shelf_id for s in shelves), slots)


def _float32(values: np.ndarray) -> list[float] | None:
    """`values` when every one is a float32 exactly, else None."""
    narrow = values.astype(np.float32)
    return narrow.tolist() if (narrow == values).all() else None


def _positions(positions: Sequence[int]) -> bool:
    return list(positions) == list(range(len(positions)))


def packed_home_page(
    shelves: tuple[ShelfCandidates, ...],
    features: np.ndarray,
    ranked: Sequence[int],
    ranked_scores: np.ndarray,
    rows: Sequence[PageRow],
) -> records_pb2.PackedPage | None:
    """The packed page of a home decision over the candidate `shelves`: its feature vector (in
    `home_names` order), the shelves it ranked (indices) with their scores, and the shown rows;
    None when it cannot be packed exactly (then the caller writes it out)."""
    if has_extras(shelves):
        return None
    table = _table(shelves)
    shelf_scores = _float32(np.asarray(ranked_scores, dtype=np.float64))
    if table is None or shelf_scores is None:
        return None
    page = records_pb2.PackedPage(
        ids=table.ids,
        cards_per_shelf=[len(s.card_ids) for s in shelves],
        feature_schema=HOME_SCHEMA,
        ranked_shelves=ranked,
        ranked_shelf_scores=shelf_scores,
    )
    values = np.asarray(features, dtype=np.float64)
    if values.size and (values >= 0).all() and (values < _EXACT_INTEGERS).all() and (values == np.floor(values)).all():
        page.feature_counts.extend(values.astype(np.uint64).tolist())
    else:
        page.feature_values.extend(values.tolist())
    whole_rows: list[bool] = []
    subset_counts: list[int] = []
    subsets: list[int] = []
    shown_counts: list[int] = []
    shown_cards: list[int] = []
    card_propensities: list[float] = []
    for row in rows:
        slot = table.card_slots[row.shelf]
        whole = row.card_candidates == shelves[row.shelf].card_ids
        whole_rows.append(whole)
        try:
            if whole:
                candidate_slot = slot
            else:
                subset = [slot[c] for c in row.card_candidates]
                subset_counts.append(len(subset))
                subsets.extend(subset)
                candidate_slot = {c: j for j, c in reversed(list(enumerate(row.card_candidates)))}
            shown_cards.extend([candidate_slot[c] for c in row.cards])
        except KeyError:
            return None  # a card of another shelf, or a shown card not among the candidates
        shown_counts.append(len(row.cards))
        card_propensities.extend(row.card_propensities)
    card_scores = _float32(np.concatenate([row.card_scores for row in rows])) if rows else []
    shown_scores = _float32(np.array([row.score for row in rows], dtype=np.float64))
    if card_scores is None or shown_scores is None:
        return None  # a score float32 does not hold: written out, it stays exact
    page.card_candidates_whole.extend(whole_rows)
    page.card_candidate_counts.extend(subset_counts)
    page.card_candidates.extend(subsets)
    page.card_scores.extend(card_scores)
    page.shown_shelves.extend([row.shelf for row in rows])
    page.shown_scores.extend(shown_scores)
    page.shown_propensities.extend([row.propensity for row in rows])
    page.shown_cards_ranking_propensities.extend([row.cards_ranking_propensity for row in rows])
    page.shown_card_counts.extend(shown_counts)
    page.shown_cards.extend(shown_cards)
    page.shown_card_propensities.extend(card_propensities)
    if not _positions([row.position for row in rows]):
        page.shown_positions.extend(row.position for row in rows)
    if not all(_positions(row.card_positions) for row in rows):
        page.shown_card_positions.extend(k for row in rows for k in row.card_positions)
    return page


def logged_shelves(rows: Sequence[PageRow]) -> list[records_pb2.LoggedShelf]:
    """A page's shown rows as the written-out decision log (and a shadow decision) has them."""
    return [
        records_pb2.LoggedShelf(
            shelf_id=row.shelf_id,
            position=row.position,
            score=row.score,
            propensity=row.propensity,
            cards=[
                records_pb2.LoggedCard(card_id=card_id, position=k, score=score, propensity=p)
                for card_id, k, score, p in zip(
                    row.cards, row.card_positions, row.shown_card_scores, row.card_propensities, strict=True
                )
            ],
            cards_ranking_propensity=row.cards_ranking_propensity,
            card_candidates=records_pb2.CandidateScores(item_ids=row.card_candidates, scores=row.card_scores.tolist()),
            explanation_id=row.explanation_id,
            explanation_propensity=row.explanation_propensity if row.explanation_id else 0.0,
            explanation_candidates=(
                records_pb2.CandidateScores(item_ids=row.explanation_candidates, scores=row.explanation_scores)
                if row.explanation_id
                else None
            ),
        )
        for row in rows
    ]


def has_extras(shelves: Sequence[ShelfCandidates]) -> bool:
    """Whether any candidate shelf carries explanation variants or caller features: the packed
    layout does not hold them, so such a decision is logged written out."""
    return any(s.explanation_ids or s.features or s.card_features for s in shelves)


def pack(decision: records_pb2.DecisionLog) -> records_pb2.DecisionLog:
    """The decision in the packed layout (a new message), or `decision` itself when it is not a
    written-out home decision or would not unpack to exactly itself."""
    if decision.surface != "home" or decision.layout != LAYOUT_WRITTEN_OUT or decision.HasField("packed"):
        return decision
    if any(s.explanation_ids or s.features or s.card_features for s in decision.candidates) or any(
        s.explanation_id for s in decision.shown
    ):
        return decision  # explanations and caller features stay written out
    shelves = tuple(ShelfCandidates(s.shelf_id, tuple(s.card_ids)) for s in decision.candidates)
    shelf_index = {s.shelf_id: i for i, s in reversed(list(enumerate(shelves)))}
    if len(shelf_index) != len(shelves) or list(decision.feature_names) != home_names(
        [s.shelf_id for s in shelves], [c for s in shelves for c in s.card_ids]
    ):
        return decision  # a vector the schema does not name: keep it written out
    if any(i not in shelf_index for i in decision.shelf_candidates.item_ids) or any(
        s.shelf_id not in shelf_index for s in decision.shown
    ):
        return decision
    if len(decision.shelf_candidates.scores) != len(decision.shelf_candidates.item_ids):
        return decision
    rows = []
    for shelf in decision.shown:
        candidates = tuple(shelf.card_candidates.item_ids)
        scores = list(shelf.card_candidates.scores)
        score_of = dict(zip(candidates, scores, strict=False))
        if len(scores) != len(candidates) or any(score_of.get(c.card_id) != c.score for c in shelf.cards):
            return decision  # a shown card's score is not its candidate's: keep it written out
        rows.append(
            PageRow(
                shelf=shelf_index[shelf.shelf_id],
                shelf_id=shelf.shelf_id,
                position=shelf.position,
                score=shelf.score,
                propensity=shelf.propensity,
                card_candidates=candidates,
                card_scores=np.asarray(scores, dtype=np.float64),
                cards=tuple(c.card_id for c in shelf.cards),
                card_positions=tuple(c.position for c in shelf.cards),
                shown_card_scores=tuple(c.score for c in shelf.cards),
                card_propensities=tuple(c.propensity for c in shelf.cards),
                cards_ranking_propensity=shelf.cards_ranking_propensity,
            )
        )
    page = packed_home_page(
        shelves,
        np.asarray(decision.feature_values, dtype=np.float64),
        [shelf_index[i] for i in decision.shelf_candidates.item_ids],
        np.asarray(decision.shelf_candidates.scores, dtype=np.float64),
        rows,
    )
    if page is None or len(set(decision.shelf_candidates.item_ids)) != len(decision.shelf_candidates.item_ids):
        return decision
    packed = records_pb2.DecisionLog()
    packed.CopyFrom(decision)
    for name in _PACKED_FIELDS:
        packed.ClearField(name)  # type: ignore[arg-type]
    packed.layout = LAYOUT_PACKED
    packed.packed.CopyFrom(page)
    return packed


def unpack(decision: records_pb2.DecisionLog) -> records_pb2.DecisionLog:
    """Restore the written-out layout in place (a no-op on written-out records); returns `decision`.

    Raises LayoutError on a packed record that is inconsistent (truncated or corrupted)."""
    if decision.layout != LAYOUT_PACKED:
        return decision
    page = decision.packed
    if page.feature_schema != HOME_SCHEMA:
        raise LayoutError(f"unknown feature schema {page.feature_schema!r} (this reader knows {HOME_SCHEMA!r})")
    try:
        _unpack_into(decision, page)
    except (IndexError, ValueError) as exc:
        if isinstance(exc, LayoutError):
            raise
        raise LayoutError(f"packed decision {decision.decision_id} does not unpack: {exc}") from exc
    decision.ClearField("packed")
    decision.layout = LAYOUT_WRITTEN_OUT
    return decision


def _entry(ids: Sequence[str], i: int) -> str:
    if not 0 <= i < len(ids):
        raise LayoutError(f"index {i} is outside a list of {len(ids)}")
    return ids[i]


def _unpack_into(decision: records_pb2.DecisionLog, page: records_pb2.PackedPage) -> None:
    table = front_decode(page.ids)
    n_shelves = len(page.cards_per_shelf)
    ends = np.cumsum([n_shelves, *page.cards_per_shelf]).tolist()
    if ends[-1] != len(table):
        raise LayoutError(f"the id table holds {len(table)} ids, its candidates {ends[-1]}")
    shelf_ids = table[:n_shelves]
    shelf_cards = [table[ends[s] : ends[s + 1]] for s in range(n_shelves)]
    decision.candidates.extend(api_pb2.Shelf(shelf_id=shelf_ids[s], card_ids=shelf_cards[s]) for s in range(n_shelves))
    decision.feature_names.extend(home_names(shelf_ids, table[n_shelves:]))
    decision.feature_values.extend(page.feature_counts if len(page.feature_counts) else page.feature_values)
    if len(decision.feature_values) != len(decision.feature_names):
        raise LayoutError("the feature values do not match the schema's names")
    decision.shelf_candidates.item_ids.extend(_entry(shelf_ids, i) for i in page.ranked_shelves)
    decision.shelf_candidates.scores.extend(page.ranked_shelf_scores)
    n_rows = len(page.shown_shelves)
    positions = list(page.shown_positions) or list(range(n_rows))
    card_positions = list(page.shown_card_positions)
    subsets = scores_at = shown_at = subset_at = 0
    for r in range(n_rows):
        s = page.shown_shelves[r]
        shelf_id = _entry(shelf_ids, s)
        cards = shelf_cards[s]
        if page.card_candidates_whole[r]:
            candidates = cards
        else:
            n = page.card_candidate_counts[subsets]
            subsets += 1
            candidates = [_entry(cards, j) for j in page.card_candidates[subset_at : subset_at + n]]
            subset_at += n
        scores = list(page.card_scores[scores_at : scores_at + len(candidates)])
        scores_at += len(candidates)
        n_shown = page.shown_card_counts[r]
        shown = page.shown_cards[shown_at : shown_at + n_shown]
        propensities = page.shown_card_propensities[shown_at : shown_at + n_shown]
        places = card_positions[shown_at : shown_at + n_shown] if card_positions else range(n_shown)
        shown_at += n_shown
        decision.shown.append(
            records_pb2.LoggedShelf(
                shelf_id=shelf_id,
                position=positions[r],
                score=page.shown_scores[r],
                propensity=page.shown_propensities[r],
                cards=[
                    records_pb2.LoggedCard(card_id=_entry(candidates, c), position=k, score=scores[c], propensity=p)
                    for k, c, p in zip(places, shown, propensities, strict=True)
                ],
                cards_ranking_propensity=page.shown_cards_ranking_propensities[r],
                card_candidates=records_pb2.CandidateScores(item_ids=candidates, scores=scores),
            )
        )
    if scores_at != len(page.card_scores) or shown_at != len(page.shown_cards):
        raise LayoutError("the page's card arrays are longer than its rows")


def shown_ids(decision: records_pb2.DecisionLog) -> set[str]:
    """Every shelf and card id the decision showed, in either layout (packed ones are not unpacked)."""
    if decision.layout != LAYOUT_PACKED:
        items = {shelf.shelf_id for shelf in decision.shown}
        items.update(card.card_id for shelf in decision.shown for card in shelf.cards)
        return items
    page = decision.packed
    table = front_decode(page.ids)
    n_shelves = len(page.cards_per_shelf)
    ends = np.cumsum([n_shelves, *page.cards_per_shelf]).tolist()
    items = set()
    subsets = subset_at = shown_at = 0
    for r, s in enumerate(page.shown_shelves):
        items.add(_entry(table[:n_shelves], s))
        cards = table[ends[s] : ends[s + 1]]
        if page.card_candidates_whole[r]:
            candidates: Sequence[str] = cards
        else:
            n = page.card_candidate_counts[subsets]
            subsets += 1
            candidates = [_entry(cards, j) for j in page.card_candidates[subset_at : subset_at + n]]
            subset_at += n
        n_shown = page.shown_card_counts[r]
        items.update(_entry(candidates, c) for c in page.shown_cards[shown_at : shown_at + n_shown])
        shown_at += n_shown
    return items


def unpack_rewarded(rewarded: records_pb2.RewardedDecision) -> records_pb2.RewardedDecision:
    """`unpack` on a rewarded decision's decision (in place); returns `rewarded`."""
    unpack(rewarded.decision)
    return rewarded
