"""What one request may carry: the documented maximum of every field of every RPC (README, "Limits").

Work and memory follow the candidates a request brings, and every answered decision's log fits in
one Kafka record: a request over these limits gets INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from tastemaker.services.errors import InvalidArgument

#: any id: user, shelf, card, sticker, decision, item, request
MAX_ID_LENGTH = 256
#: RankHome: candidate shelves, cards of one candidate shelf, and cards over all candidate shelves
MAX_SHELF_CANDIDATES = 500
MAX_CARD_CANDIDATES = 500
MAX_TOTAL_CARDS = 5_000
#: RankHome: rows and cards per row a page may ask for; pinned rows lie below MAX_SHELVES
MAX_SHELVES = 100
MAX_CARDS_PER_SHELF = 100
MAX_EXCLUDED_IDS = 5_000
#: RankHome: explanation variants per shelf; the caller's numeric features per shelf or card, their
#: names' length, their values' magnitude, and in all per request
MAX_EXPLANATIONS = 16
MAX_FEATURES = 64
MAX_FEATURE_NAME_LENGTH = 64
MAX_FEATURE_MAGNITUDE = 1e9
MAX_TOTAL_FEATURES = 50_000
#: RankHome and SuggestStickers: request context
MAX_CONTEXT_ENTRIES = 64
MAX_CONTEXT_KEY_LENGTH = 64
MAX_CONTEXT_VALUE_LENGTH = 256
#: SuggestStickers: suggestions per request
MAX_STICKERS = 50
#: ReportOutcome: event type
MAX_EVENT_TYPE_LENGTH = 64
#: the default valid reward range; configure with TASTEMAKER_REWARD_MIN / TASTEMAKER_REWARD_MAX
DEFAULT_REWARD_RANGE = (-1000.0, 1000.0)
#: A decision log must fit in one Kafka record under the brokers' default limit (1 MiB, less the
#: record's key, headers and batch overhead); a request whose log would be larger is refused
#: before anything is shown, so every answered decision can be logged.
MAX_DECISION_LOG_BYTES = 900 * 1024
#: ReportDeviceDecisions: decisions a call at most; how old one may be (a device offline a week);
#: how far ahead of the server's clock a device's may be
MAX_DEVICE_DECISIONS = 500
MAX_DEVICE_DECISION_AGE_MS = 7 * 24 * 3600 * 1000
MAX_DEVICE_CLOCK_AHEAD_MS = 5 * 60 * 1000
#: candidates an uploaded list may name (the index's 50 and the chat head's for two messages, with room)
MAX_DEVICE_CANDIDATES = 200


def check_id(field: str, value: str, required: bool = True) -> None:
    if not value:
        if required:
            raise InvalidArgument(field, "is required")
        return
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(field, f"is longer than {MAX_ID_LENGTH} characters")


def check_count(field: str, value: int, maximum: int, zero_means: str = "the server default") -> None:
    """A requested count in [0, maximum] (0 = `zero_means`)."""
    if not 0 <= value <= maximum:
        raise InvalidArgument(field, f"must be in [0, {maximum}] (0 = {zero_means}), got {value}")


def check_features(field: str, features: Mapping[str, float]) -> None:
    """A candidate's numeric features: at most MAX_FEATURES, named, finite and bounded."""
    if len(features) > MAX_FEATURES:
        raise InvalidArgument(field, f"has more than {MAX_FEATURES} features")
    for name, value in features.items():
        if not name or len(name) > MAX_FEATURE_NAME_LENGTH:
            raise InvalidArgument(f"{field}[{name[:32]!r}]", f"name must be 1 to {MAX_FEATURE_NAME_LENGTH} characters")
        if not math.isfinite(value) or abs(value) > MAX_FEATURE_MAGNITUDE:
            raise InvalidArgument(
                f"{field}[{name!r}]", f"must be a finite number within ±{MAX_FEATURE_MAGNITUDE:g}, got {value}"
            )


def features_look_valid(maps: Sequence[Mapping[str, float]]) -> bool:
    """Every map within `check_features`' bounds, checked in bulk (False: find the first bad one
    with `check_features`, which names it)."""
    if not maps or max(map(len, maps)) > MAX_FEATURES:
        return not maps
    names = [name for features in maps for name in features]
    if not names:
        return True
    lengths = list(map(len, names))
    if min(lengths) == 0 or max(lengths) > MAX_FEATURE_NAME_LENGTH:
        return False
    values = np.fromiter((v for features in maps for v in features.values()), dtype=np.float64, count=len(names))
    return bool(np.all(np.abs(values) <= MAX_FEATURE_MAGNITUDE))  # NaN compares False


def check_context(field: str, context: Mapping[str, str]) -> None:
    if len(context) > MAX_CONTEXT_ENTRIES:
        raise InvalidArgument(field, f"has more than {MAX_CONTEXT_ENTRIES} entries")
    for key, value in context.items():
        if len(key) > MAX_CONTEXT_KEY_LENGTH:
            raise InvalidArgument(
                f"{field}[{key[:32]!r}...]", f"key is longer than {MAX_CONTEXT_KEY_LENGTH} characters"
            )
        if len(value) > MAX_CONTEXT_VALUE_LENGTH:
            raise InvalidArgument(f"{field}[{key!r}]", f"is longer than {MAX_CONTEXT_VALUE_LENGTH} characters")
