"""Every RPC's request parsed into the value its service takes, side by side: each field checked
against `limits`, a bad one raised as `InvalidArgument` naming it (`INVALID_ARGUMENT` on the wire).

Every RPC has one shape: `parse_x(request)` here → the service's method → its response builder."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from tastemaker.bandits.catalog import ShelfCandidates
from tastemaker.records.activation import ACTIVATION
from tastemaker.services.errors import InvalidArgument
from tastemaker.services.limits import (
    DEFAULT_REWARD_RANGE,
    MAX_CARD_CANDIDATES,
    MAX_CARDS_PER_SHELF,
    MAX_EVENT_TYPE_LENGTH,
    MAX_EXCLUDED_IDS,
    MAX_EXPLANATIONS,
    MAX_ID_LENGTH,
    MAX_SHELF_CANDIDATES,
    MAX_SHELVES,
    MAX_STICKERS,
    MAX_TOTAL_CARDS,
    MAX_TOTAL_FEATURES,
    check_context,
    check_count,
    check_features,
    check_id,
    features_look_valid,
)
from tastemaker.stickers.catalog import LANGUAGES
from tastemaker.stickers.text import MAX_MESSAGE_CHARS
from tastemaker.v1 import api_pb2, records_pb2


@dataclass(frozen=True)
class HomeRequest:
    user_id: str
    context: dict[str, str]
    candidates: tuple[ShelfCandidates, ...]
    max_shelves: int
    max_cards_per_shelf: int
    request_id: str = ""
    #: 0-based row → shelf id that must be there
    pinned: tuple[tuple[int, str], ...] = ()
    excluded: frozenset[str] = frozenset()
    #: deferred activation: the decision counts only once `Feedback.Activate` names it
    deferred: bool = False
    #: the candidates as the request sent them (the written-out decision log copies these)
    candidate_messages: tuple[api_pb2.Shelf, ...] = ()


def _check_extras(i: int, shelf: api_pb2.Shelf, cards: tuple[str, ...]) -> int:
    """Check shelf `i`'s explanation variants and features; returns how many features it carries.
    The features are checked in bulk (hundreds of cards each carry a map); the slow path that
    names the offending one runs only once something is wrong."""
    explanations = list(shelf.explanation_ids)
    if len(explanations) > MAX_EXPLANATIONS:
        raise InvalidArgument(f"candidates[{i}].explanation_ids", f"has more than {MAX_EXPLANATIONS} explanations")
    if len(set(explanations)) != len(explanations):
        raise InvalidArgument(f"candidates[{i}].explanation_ids", "has duplicate explanation ids")
    for j, explanation in enumerate(explanations):
        if not explanation or len(explanation) > MAX_ID_LENGTH:
            check_id(f"candidates[{i}].explanation_ids[{j}]", explanation)
    maps = {f"candidates[{i}].features": shelf.features}
    if shelf.card_features:
        known = set(cards)
        for card_id, features in shelf.card_features.items():
            if card_id not in known:
                raise InvalidArgument(
                    f"candidates[{i}].card_features[{card_id[:64]!r}]", "is not one of the shelf's card_ids"
                )
            maps[f"candidates[{i}].card_features[{card_id!r}]"] = features.values
    if not features_look_valid(list(maps.values())):
        for field, features in maps.items():
            check_features(field, features)
    return sum(map(len, maps.values()))


def parse_rank_home(request: api_pb2.RankHomeRequest) -> HomeRequest:
    """Validate a RankHomeRequest against `limits`; errors name the offending field."""
    check_id("user_id", request.user_id)
    check_count("max_shelves", request.max_shelves, MAX_SHELVES)
    check_count("max_cards_per_shelf", request.max_cards_per_shelf, MAX_CARDS_PER_SHELF)
    check_context("context", request.context)
    if len(request.candidates) > MAX_SHELF_CANDIDATES:
        raise InvalidArgument("candidates", f"has more than {MAX_SHELF_CANDIDATES} shelves")
    check_id("request_id", request.request_id, required=False)
    shelves = []
    seen: set[str] = set()
    total_cards = total_features = 0
    for i, shelf in enumerate(request.candidates):
        shelf_id = shelf.shelf_id
        if not shelf_id or len(shelf_id) > MAX_ID_LENGTH:  # the field name is formatted only on errors
            check_id(f"candidates[{i}].shelf_id", shelf_id)
        if shelf_id in seen:
            raise InvalidArgument(f"candidates[{i}].shelf_id", f"repeats {shelf_id!r}")
        seen.add(shelf_id)
        cards = tuple(shelf.card_ids)
        if not cards:
            raise InvalidArgument(f"candidates[{i}].card_ids", "must not be empty")
        if len(cards) > MAX_CARD_CANDIDATES:
            raise InvalidArgument(f"candidates[{i}].card_ids", f"has more than {MAX_CARD_CANDIDATES} cards")
        total_cards += len(cards)
        if total_cards > MAX_TOTAL_CARDS:
            raise InvalidArgument("candidates", f"have more than {MAX_TOTAL_CARDS} cards in all")
        if len(set(cards)) != len(cards):
            raise InvalidArgument(f"candidates[{i}].card_ids", "has duplicate card ids")
        lengths = list(map(len, cards))
        if min(lengths) == 0 or max(lengths) > MAX_ID_LENGTH:  # then find the first bad one, to name it
            for j, card_id in enumerate(cards):
                check_id(f"candidates[{i}].card_ids[{j}]", card_id)
        if shelf.explanation_ids or shelf.features or shelf.card_features:
            total_features += _check_extras(i, shelf, cards)
            if total_features > MAX_TOTAL_FEATURES:
                raise InvalidArgument("candidates", f"carry more than {MAX_TOTAL_FEATURES} features in all")
            # the request's own maps, read-only from here on (copying hundreds of them costs more than ranking)
            shelves.append(
                ShelfCandidates(
                    shelf_id, cards, tuple(shelf.explanation_ids), shelf.features,
                    {card: f.values for card, f in shelf.card_features.items()},
                )
            )  # fmt: skip
            continue
        shelves.append(ShelfCandidates(shelf_id, cards))
    pinned: dict[int, str] = {}
    for i, pin in enumerate(request.pinned_shelves):
        check_id(f"pinned_shelves[{i}].shelf_id", pin.shelf_id)
        if not 0 <= pin.position < MAX_SHELVES:
            raise InvalidArgument(
                f"pinned_shelves[{i}].position", f"must be in [0, {MAX_SHELVES - 1}], got {pin.position}"
            )
        if pin.position in pinned:
            raise InvalidArgument(f"pinned_shelves[{i}].position", f"pins a second shelf to row {pin.position}")
        if pin.shelf_id in pinned.values():
            raise InvalidArgument(f"pinned_shelves[{i}].shelf_id", f"pins {pin.shelf_id!r} twice")
        pinned[pin.position] = pin.shelf_id
    if len(request.excluded_item_ids) > MAX_EXCLUDED_IDS:
        raise InvalidArgument("excluded_item_ids", f"has more than {MAX_EXCLUDED_IDS} ids")
    for i, item in enumerate(request.excluded_item_ids):
        check_id(f"excluded_item_ids[{i}]", item)
    return HomeRequest(
        user_id=request.user_id,
        context=dict(request.context),
        candidates=tuple(shelves),
        max_shelves=request.max_shelves,
        max_cards_per_shelf=request.max_cards_per_shelf,
        request_id=request.request_id,
        pinned=tuple(sorted(pinned.items())),
        excluded=frozenset(request.excluded_item_ids),
        deferred=request.defer_activation,
        candidate_messages=tuple(request.candidates),
    )


@dataclass(frozen=True)
class StickerRequest:
    """A checked SuggestStickers request (constructing one checks it: the CLI and tests build it too)."""

    user_id: str
    message: str
    language: str = ""
    k: int = 5
    #: the message being answered, context for the model (may be empty)
    previous_message: str = ""
    #: typeahead: `message` is the text typed so far, its last word perhaps unfinished
    partial: bool = False

    def __post_init__(self) -> None:
        check_id("user_id", self.user_id)
        if not self.message or not self.message.strip():
            raise InvalidArgument("message", "is empty")
        if self.language and self.language not in LANGUAGES:
            raise InvalidArgument("language", f"must be one of {', '.join(LANGUAGES)} or empty, got {self.language!r}")
        if not 0 <= self.k <= MAX_STICKERS:
            raise InvalidArgument("k", f"must be in [0, {MAX_STICKERS}] (0 = 5), got {self.k}")
        # long messages are cut, not refused; k 0 means 5
        object.__setattr__(self, "message", self.message[:MAX_MESSAGE_CHARS])
        object.__setattr__(self, "previous_message", self.previous_message[:MAX_MESSAGE_CHARS])
        object.__setattr__(self, "k", self.k or 5)


def parse_suggest_stickers(request: api_pb2.SuggestStickersRequest) -> StickerRequest:
    check_id("user_id", request.user_id)
    check_count("k", request.k, MAX_STICKERS, zero_means="5")
    check_context("context", request.context)
    return StickerRequest(
        request.user_id, request.message, request.language, request.k, request.previous_message, request.partial
    )


def outcome_id(decision_id: str, item_id: str, event_type: str, idempotency_key: str = "") -> str:
    """The same for identical reports, so the joiner counts them once."""
    parts = "\x1f".join((decision_id, item_id, event_type, idempotency_key)).encode()
    return hashlib.blake2b(parts, digest_size=16).hexdigest()


def parse_report_outcome(
    request: api_pb2.ReportOutcomeRequest, reward_range: tuple[float, float] = DEFAULT_REWARD_RANGE
) -> records_pb2.Outcome:
    check_id("decision_id", request.decision_id)
    check_id("item_id", request.item_id)
    check_id("idempotency_key", request.idempotency_key, required=False)
    low, high = reward_range
    if not (math.isfinite(request.reward) and low <= request.reward <= high):
        raise InvalidArgument("reward", f"must be a finite number in [{low:g}, {high:g}], got {request.reward}")
    if len(request.event_type) > MAX_EVENT_TYPE_LENGTH:
        raise InvalidArgument("event_type", f"is longer than {MAX_EVENT_TYPE_LENGTH} characters")
    event_type = request.event_type or "unspecified"
    return records_pb2.Outcome(
        outcome_id=outcome_id(request.decision_id, request.item_id, event_type, request.idempotency_key),
        decision_id=request.decision_id,
        item_id=request.item_id,
        reward=request.reward,
        event_type=event_type,
    )


def parse_activate(request: api_pb2.ActivateRequest) -> records_pb2.Outcome:
    """Deferred activation as an outcome (`activation` set, which the joiner turns into
    `RewardedDecision.activated`); repeated calls have one outcome id, so they count once."""
    check_id("decision_id", request.decision_id)
    return records_pb2.Outcome(
        outcome_id=outcome_id(request.decision_id, "", ACTIVATION),
        decision_id=request.decision_id,
        event_type=ACTIVATION,
        activation=True,
    )
