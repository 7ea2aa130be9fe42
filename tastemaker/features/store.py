"""The online feature store in Redis, its read side (the write side is `feature_writer.py`).

Reads: one user's features in one round trip, many users' in one pipeline; missing features
read as their typed default; decayed values are decayed to the read time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np
import redis

from tastemaker.features import keys
from tastemaker.features.definitions import FEATURES, RATIOS, Aggregation, Entity, FeatureDefinition
from tastemaker.features.lua import SPLIT_LUA
from tastemaker.features.pseudonyms import Pseudonyms
from tastemaker.features.updates import DECAY_TIME_SUFFIX

log = logging.getLogger(__name__)


def _default(feature: FeatureDefinition) -> Any:
    if feature.aggregation is Aggregation.RECENT_ITEMS:
        return []
    if feature.aggregation in (Aggregation.COUNT, Aggregation.LAST_TIME):
        return 0
    return 0.0


def _decayed(raw: dict[str, str], name: str, feature: FeatureDefinition, as_of_ms: int) -> float:
    value = float(raw.get(name, 0.0))
    if not value:
        return 0.0
    reference_ms = float(raw[name + DECAY_TIME_SUFFIX])
    return value * 2.0 ** (-max(0.0, as_of_ms - reference_ms) / (1000.0 * (feature.half_life_s or 1.0)))


def _typed(raw: dict[str, str], name: str, feature: FeatureDefinition, as_of_ms: int) -> Any:
    if feature.aggregation in (Aggregation.DECAYED_COUNT, Aggregation.DECAYED_SUM):
        return _decayed(raw, name, feature, as_of_ms)
    if name not in raw:
        return _default(feature)
    if feature.aggregation in (Aggregation.COUNT, Aggregation.LAST_TIME):
        return int(raw[name])
    return float(raw[name])


#: the per-user features the home ranker reads, named once for the full read and `read_for_ranking`
SHELF_ENGAGEMENT = "shelf.engagement"
CARD_ENGAGEMENT = "card.engagement"
STICKER_SENDS = "sticker.sends"


def event_count_name(event_type: str) -> str:
    return f"events.{event_type}.count"


class RankingFeatures(NamedTuple):
    """What the home ranker reads of a user: counts per event type, engagement with each candidate
    shelf and with each candidate card (float64, in the order asked; 0 where there is none)."""

    counts: np.ndarray
    shelves: np.ndarray
    cards: np.ndarray


@dataclass(frozen=True)
class UserFeatures:
    """One user's features, typed, with defaults for what is missing."""

    user_id: str
    #: per-user features by name
    values: dict[str, Any] = field(default_factory=dict)
    #: per-(user, shelf) and per-(user, item) features: name → {shelf or item id → value}
    keyed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        return self.values[name]

    def event_count(self, event_type: str) -> int:
        return int(self.values.get(event_count_name(event_type), 0))

    def shelf_engagement(self, shelf_id: str) -> int:
        return int(self.keyed.get(SHELF_ENGAGEMENT, {}).get(shelf_id, 0))

    def card_engagement(self, card_id: str) -> int:
        return int(self.keyed.get(CARD_ENGAGEMENT, {}).get(card_id, 0))

    def shelf_engagements(self, shelf_ids: Sequence[str]) -> np.ndarray:
        """`shelf_engagement` of each shelf, as float64."""
        return _counts(self.keyed.get(SHELF_ENGAGEMENT, {}), shelf_ids)

    def card_engagements(self, card_ids: Sequence[str]) -> np.ndarray:
        """`card_engagement` of each card, as float64."""
        return _counts(self.keyed.get(CARD_ENGAGEMENT, {}), card_ids)

    def for_ranking(
        self, event_types: Sequence[str], shelf_ids: Sequence[str], card_ids: Sequence[str]
    ) -> RankingFeatures:
        counts = np.array([self.event_count(t) for t in event_types], dtype=np.float64)
        return RankingFeatures(counts, self.shelf_engagements(shelf_ids), self.card_engagements(card_ids))

    def sticker_sends(self, sticker_id: str) -> int:
        return int(self.keyed.get(STICKER_SENDS, {}).get(sticker_id, 0))

    def as_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, **self.values, **self.keyed}


def _counts(values: dict[str, Any], ids: Sequence[str]) -> np.ndarray:
    if not values:
        return np.zeros(len(ids), dtype=np.float64)
    get = values.get
    return np.array([int(get(i, 0)) for i in ids], dtype=np.float64)


def user_features_from(
    user_id: str,
    raw: dict[str, str],
    recent: dict[str, list[str]],
    as_of_ms: int,
    features: Iterable[FeatureDefinition],
) -> UserFeatures:
    values: dict[str, Any] = {}
    keyed_features: dict[str, FeatureDefinition] = {}
    for feature in features:
        if feature.entity is Entity.ITEM:
            continue
        if feature.aggregation is Aggregation.RECENT_ITEMS:
            values[feature.name] = recent.get(feature.name, [])
        elif feature.entity is Entity.USER:
            values[feature.name] = _typed(raw, feature.name, feature, as_of_ms)
        else:
            keyed_features[feature.name] = feature
    keyed: dict[str, dict[str, Any]] = {name: {} for name in keyed_features}
    # how each per-shelf and per-item value is read: counts and times as int, sums as float, decayed
    # values at as_of_ms (most fields are plain, so they skip the general `_typed`)
    plain = {
        name: int if feature.aggregation in (Aggregation.COUNT, Aggregation.LAST_TIME) else float
        for name, feature in keyed_features.items()
        if feature.aggregation not in (Aggregation.DECAYED_COUNT, Aggregation.DECAYED_SUM)
    }
    for name, value in raw.items():  # one pass over the hash for every per-shelf and per-item value
        feature_name, bar, sub_key = name.partition("|")
        if not bar:
            continue
        convert = plain.get(feature_name)
        if convert is not None:
            keyed[feature_name][sub_key] = convert(value)
        elif feature_name in keyed_features and not name.endswith(DECAY_TIME_SUFFIX):
            keyed[feature_name][sub_key] = _decayed(raw, name, keyed_features[feature_name], as_of_ms)
    for ratio in RATIOS:
        denominator = sum(float(values.get(n, 0.0)) for n in ratio.denominators)
        numerator = sum(float(values.get(n, 0.0)) for n in ratio.numerators)
        values[ratio.name] = numerator / denominator if denominator else ratio.default
    return UserFeatures(user_id, values, keyed)


#: the ranker's read: the whole hash when it is at most twice the request, else the asked fields.
#: ARGV: the number of fields, then the fields joined by \31 (one argument: packing hundreds of
#: separate arguments was most of the read's cost); unpack() takes ~8,000 values: HMGET in slices
_RANKING_READ_LUA = (
    SPLIT_LUA
    + """
local h, n = KEYS[1], tonumber(ARGV[1])
if redis.call('HLEN', h) <= 2 * n then return {1, redis.call('HGETALL', h)} end
local F = split(ARGV[2])
local out = {}
for s = 1, #F, 4000 do
  local part = redis.call('HMGET', h, unpack(F, s, math.min(s + 3999, #F)))
  for q = 1, #part do out[s + q - 1] = part[q] end
end
return {0, out}
"""
)


class FeatureReader(Protocol):
    """What serving reads of a user: the whole feature set, and the ranker's narrow read (counts per
    event type, engagement with each candidate shelf and card, in the order asked)."""

    def read(self, user_id: str) -> UserFeatures: ...

    def read_for_ranking(
        self, user_id: str, event_types: Sequence[str], shelf_ids: Sequence[str], card_ids: Sequence[str]
    ) -> RankingFeatures: ...


def _decode_hash(raw: dict[Any, Any]) -> dict[str, str]:  # the client returns bytes
    return {k.decode(): v.decode() for k, v in raw.items()}


class FeatureStore:
    """The read side: one user's features, many users', the ranker's narrow read, item counts.
    Writes are `features.feature_writer.FeatureWriter`'s."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "tm",
        features: Sequence[FeatureDefinition] = FEATURES,
        pseudonyms: Pseudonyms | None = None,
    ) -> None:
        self._redis = client
        #: users are stored under their pseudonym when a key is configured (`features.pseudonyms`)
        self._pseudonyms = pseudonyms or Pseudonyms()
        self._namespace = namespace
        self._features = tuple(features)
        self._recent_names = [f.name for f in self._features if f.aggregation is Aggregation.RECENT_ITEMS]
        self._ranking_read = client.register_script(_RANKING_READ_LUA)
        self.round_trips = 0

    # -- reads ----------------------------------------------------------------------------
    def _queue_user(self, pipe: Any, user_id: str) -> None:
        stored = self._pseudonyms.of(user_id)
        pipe.hgetall(keys.user_features(self._namespace, stored))
        for name in self._recent_names:
            pipe.zrevrange(keys.recent_items(self._namespace, stored, name), 0, -1)

    def _from_replies(self, user_id: str, replies: list[Any], as_of_ms: int) -> UserFeatures:
        raw = _decode_hash(replies[0])
        recent = {
            name: [keys.text(x) for x in items] for name, items in zip(self._recent_names, replies[1:], strict=True)
        }
        return user_features_from(user_id, raw, recent, as_of_ms, self._features)

    def read_for_ranking(
        self, user_id: str, event_types: Sequence[str], shelf_ids: Sequence[str], card_ids: Sequence[str]
    ) -> RankingFeatures:
        """`read(user_id).for_ranking(...)` in one round trip whose cost follows the request, not the
        user's history: a hash at most twice the size of the request comes back whole (HGETALL; small
        hashes are listpacks, where a field lookup is a scan), a larger one as just these fields (HMGET)."""
        fields = [event_count_name(t) for t in event_types]
        fields += [f"{SHELF_ENGAGEMENT}|{s}" for s in shelf_ids]
        fields += [f"{CARD_ENGAGEMENT}|{c}" for c in card_ids]
        key = keys.user_features(self._namespace, self._pseudonyms.of(user_id))
        packed = "\x1f".join(fields)
        if packed.count("\x1f") == len(fields) - 1:
            whole, reply = self._ranking_read(keys=[key], args=[len(fields), packed])
        else:  # an id holds the separator itself: ask for the fields one argument each
            whole, reply = 0, self._redis.hmget(key, fields)
        self.round_trips += 1
        if whole:
            stored = dict(zip(map(bytes.decode, reply[::2]), reply[1::2], strict=True))
            reply = list(map(stored.get, fields))
        flat = np.array([int(v) if v else 0 for v in reply], dtype=np.float64)
        n_types, n_shelves = len(event_types), len(shelf_ids)
        return RankingFeatures(flat[:n_types], flat[n_types : n_types + n_shelves], flat[n_types + n_shelves :])

    def read_item_counts(self, user_id: str, feature: str, item_ids: Sequence[str]) -> np.ndarray:
        """One per-(user, item) count of one user for `item_ids` (0 where there is none), in one
        HMGET of just those fields: the sticker re-rank's read, whose cost follows the request, not
        the user's history (a full `read` brought back every card and shelf the user touched)."""
        key = keys.user_features(self._namespace, self._pseudonyms.of(user_id))
        reply = self._redis.hmget(key, [f"{feature}|{i}" for i in item_ids]) if item_ids else []
        self.round_trips += 1
        return np.array([int(v) if v else 0 for v in reply], dtype=np.float64)

    def read(self, user_id: str, as_of_ms: int | None = None) -> UserFeatures:
        """One user's features in one round trip."""
        return self.read_many([user_id], as_of_ms)[0]

    def read_many(self, user_ids: Sequence[str], as_of_ms: int | None = None) -> list[UserFeatures]:
        """Many users' features in one pipelined round trip."""
        as_of_ms = int(time.time() * 1000) if as_of_ms is None else as_of_ms
        pipe = self._redis.pipeline(transaction=False)
        for user_id in user_ids:
            self._queue_user(pipe, user_id)
        replies = pipe.execute()
        self.round_trips += 1
        width = 1 + len(self._recent_names)
        return [
            self._from_replies(user_id, replies[i * width : (i + 1) * width], as_of_ms)
            for i, user_id in enumerate(user_ids)
        ]

    def read_item(self, item_id: str, as_of_ms: int | None = None) -> dict[str, Any]:
        """One item's global features (popularity)."""
        as_of_ms = int(time.time() * 1000) if as_of_ms is None else as_of_ms
        raw = _decode_hash(self._redis.hgetall(keys.item_features(self._namespace, item_id)))
        return {f.name: _typed(raw, f.name, f, as_of_ms) for f in self._features if f.entity is Entity.ITEM}
