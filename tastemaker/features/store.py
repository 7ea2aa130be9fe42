"""The online feature store in Redis.

Writes: each event's updates (features/updates.py) are applied per atomic unit — one user, or
one item — by one Lua call that also advances that unit's per-partition offset watermark. A
record whose offset is at or below the watermark was applied before (a redelivery after a
crash or a rebalance) and changes nothing: exactly-once effect, with O(partitions) state per
unit and no cross-slot keys, so it works on Redis Cluster as is.

Reads: one user's features in one round trip, many users' in one pipeline; missing features
read as their typed default; decayed values are decayed to the read time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np
import redis

from tastemaker.features import keys
from tastemaker.features.definitions import FEATURES, RATIOS, Aggregation, Entity, FeatureDefinition
from tastemaker.features.folding import BatchFolder, UnitUpdate
from tastemaker.features.pseudonyms import Pseudonyms
from tastemaker.features.redis_connect import (
    CLUSTER_RETRYABLE,
    NotReplicated,
    is_cluster,
    node_pool,
    retry_cluster,
)
from tastemaker.features.updates import DECAY_TIME_SUFFIX
from tastemaker.v1 import records_pb2

log = logging.getLogger(__name__)

#: Lua: a string of values joined by \31 (one argument, cheap to send) back into a table
_SPLIT_LUA = """
local function split(packed)
  local out, i = {}, 1
  while true do
    local j = string.find(packed, '\\31', i, true)
    if not j then out[#out + 1] = string.sub(packed, i); return out end
    out[#out + 1] = string.sub(packed, i, j - 1)
    i = j + 1
  end
end
"""

# One call per (unit, source partition) per batch, with the batch's updates to that unit folded
# (folding.py). KEYS[1] = the unit's hash, KEYS[2..] = the user's recent-items sorted sets the
# update touches. ARGV[1] = one string of tokens separated by \x1f (ids may not hold control
# characters): watermark field, first offset, last offset, ttl_s, events, number of ops; then
# 5 tokens per op — kind (c count, s sum, l last time, d decayed), field, a, b, c; then the
# number of recent lists, and for each: max items, pairs, then (time, item) pairs.
# Returns the events applied: all of them, 0 if the watermark covers the group (a redelivery),
# -1 if it covers only part of it (the caller re-sends that group one event at a time).
# Sums and decayed values are written with 17 significant digits, exact for a double.
_APPLY_LUA = (
    _SPLIT_LUA
    + """
local A = split(ARGV[1])
local h, wmf, first, last, ttl, n, nops = KEYS[1], A[1], tonumber(A[2]), A[3], A[4], A[5], tonumber(A[6])
local fields, slot, p = {wmf}, {}, 7
for k = 1, nops do
  slot[k] = #fields + 1
  fields[#fields + 1] = A[p + 1]
  if A[p] == 'd' then fields[#fields + 1] = A[p + 1] .. '@t' end
  p = p + 5
end
-- unpack() is capped by Lua's C stack (~8,000 values): long updates read and write in slices
local old = {}
for s = 1, #fields, 4000 do
  local part = redis.call('HMGET', h, unpack(fields, s, math.min(s + 3999, #fields)))
  for q = 1, #part do old[s + q - 1] = part[q] end
end
local wm = tonumber(old[1] or '-1')
if wm >= tonumber(last) then return 0 end
if wm >= first then return -1 end
local out = {wmf, last}
p = 7
for k = 1, nops do
  local kind, f, a, i = A[p], A[p + 1], A[p + 2], slot[k]
  if kind == 'c' then
    out[#out + 1] = f
    out[#out + 1] = string.format('%d', (tonumber(old[i]) or 0) + tonumber(a))
  elseif kind == 's' then
    out[#out + 1] = f
    out[#out + 1] = string.format('%.17g', (tonumber(old[i]) or 0) + tonumber(a))
  elseif kind == 'l' then
    if (not old[i]) or tonumber(a) > tonumber(old[i]) then
      out[#out + 1] = f
      out[#out + 1] = a
    end
  else
    local s, t, half_life = tonumber(a), tonumber(A[p + 3]), tonumber(A[p + 4])
    local v, tref = tonumber(old[i]), tonumber(old[i + 1])
    if v == nil or tref == nil then
      v, tref = s, t
    elseif t >= tref then
      v = v * math.pow(2, -(t - tref) / half_life) + s
      tref = t
    else
      v = v + s * math.pow(2, -(tref - t) / half_life)
    end
    out[#out + 1] = f
    out[#out + 1] = string.format('%.17g', v)
    out[#out + 1] = f .. '@t'
    out[#out + 1] = string.format('%.17g', tref)
  end
  p = p + 5
end
for i = 1, #out, 4000 do
  redis.call('HSET', h, unpack(out, i, math.min(i + 3999, #out)))
end
redis.call('EXPIRE', h, ttl)
for r = 1, tonumber(A[p]) do
  local key, max_items, pairs_n = KEYS[r + 1], tonumber(A[p + 1]), tonumber(A[p + 2])
  local args = {}
  for q = 1, 2 * pairs_n do args[q] = A[p + 2 + q] end
  for i = 1, #args, 4000 do
    redis.call('ZADD', key, 'GT', unpack(args, i, math.min(i + 3999, #args)))
  end
  redis.call('ZREMRANGEBYRANK', key, 0, -max_items - 1)
  redis.call('EXPIRE', key, ttl)
  p = p + 2 + 2 * pairs_n
end
return tonumber(n)
"""
)


class Provenance(NamedTuple):
    """Where a record came from; its offset orders it within its partition."""

    topic: str
    partition: int
    offset: int


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
    _SPLIT_LUA
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
    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "tm",
        ttl_s: int = 30 * 24 * 3600,
        features: Sequence[FeatureDefinition] = FEATURES,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
        pseudonyms: Pseudonyms | None = None,
    ) -> None:
        self._redis = client
        #: users are stored under their pseudonym when a key is configured (`features.pseudonyms`)
        self._pseudonyms = pseudonyms or Pseudonyms()
        #: replicas that must hold each applied batch before `wait()` returns (0: no fence)
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        #: batches sent again after a cluster redirect, election or lost connection
        self.cluster_retries = 0
        self._namespace = namespace
        self._ttl_s = ttl_s
        self._features = tuple(features)
        self._recent_names = [f.name for f in self._features if f.aggregation is Aggregation.RECENT_ITEMS]
        self._folder = BatchFolder(self._features)
        self._script = _APPLY_LUA
        self._ranking_read = client.register_script(_RANKING_READ_LUA)
        self._sha = hashlib.sha1(self._script.encode()).hexdigest().encode()
        # "*N $7 EVALSHA $40 <sha> $1 <numkeys>", by number of keys
        self._evalsha_heads = [
            b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$%d\r\n%d\r\n" % (4 + n, self._sha, len(str(n)), n)
            for n in range(len(self._recent_names) + 2)
        ]
        self.round_trips = 0

    # -- writes ---------------------------------------------------------------------------
    def apply(self, batch: Sequence[tuple[records_pb2.UserEvent, Provenance]]) -> int:
        """Apply a batch of events in one pipelined round trip, in order.

        Returns how many events changed their user's features (the rest were redeliveries)."""
        return self.send(batch).wait()

    def send(self, batch: Iterable[tuple[records_pb2.UserEvent, Provenance]]) -> PendingApply:
        """Write the batch's updates to Redis without waiting for them; `wait()` on the result."""
        updates = self._folder.fold((event, *source) for event, source in batch)
        return PendingApply(self, updates)

    def _command(self, update: UnitUpdate) -> bytes:
        """One EVALSHA in the Redis protocol, packed here: redis-py's packer was most of the cost."""
        ns = self._namespace
        script_keys = [self.unit_key(update)]
        if update.unit == "user":
            user = self._pseudonyms.of(update.entity_id)
            script_keys += [keys.recent_items(ns, user, name) for name in update.recents]
        tokens = [
            keys.watermark_field(update.topic, update.partition),
            str(update.first_offset),
            str(update.last_offset),
            str(self._ttl_s),
            str(len(update.events)),
            str(len(update.counts) + len(update.sums) + len(update.lasts) + len(update.decays)),
        ]
        for name, n in update.counts.items():
            tokens += ("c", name, str(n), "", "")
        for name, total in update.sums.items():
            tokens += ("s", name, repr(total), "", "")
        for name, t in update.lasts.items():
            tokens += ("l", name, str(t), "", "")
        for name, (folded, t_ref, half_life_ms) in update.decays.items():
            tokens += ("d", name, repr(folded), repr(t_ref), repr(half_life_ms))
        tokens.append(str(len(update.recents)))
        for max_items, latest in update.recents.values():
            tokens += (str(max_items), str(len(latest)))
            for item, t in latest.items():
                tokens += (str(t), item)
        packed = "\x1f".join(tokens).encode()
        out = [self._evalsha_heads[len(script_keys)]]
        for key in script_keys:
            encoded = key.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(encoded), encoded))
        out.append(b"$%d\r\n%s\r\n" % (len(packed), packed))
        return b"".join(out)

    def _reload_script(self) -> None:
        self._redis.script_load(self._script)

    def unit_key(self, update: UnitUpdate) -> str:
        """The key that places an update's script (all its keys share its hash tag)."""
        if update.unit == "user":
            return keys.user_features(self._namespace, self._pseudonyms.of(update.entity_id))
        return keys.item_features(self._namespace, update.entity_id)

    def fence_command(self) -> bytes:
        """`WAIT replicas timeout`, sent after each connection's writes (WAIT counts the writes of
        its own connection), or nothing when no replica is required."""
        if self.wait_replicas <= 0:
            return b""
        args = [b"WAIT", str(self.wait_replicas).encode(), str(self.wait_timeout_ms).encode()]
        return b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)

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


class PendingApply:
    """A batch written to Redis whose replies are not read yet, so the caller can prepare the
    next batch while Redis runs this one. `wait()` returns how many events were new.

    Each command goes to the server holding its keys: the one Redis, or on a Redis Cluster the
    slot's master (one packed write per master). A cluster that answers MOVED/ASK/CLUSTERDOWN or
    drops a connection (a failover) gets the whole batch again once its slot map is re-read: the
    watermarks make what was already applied a no-op. With the store's `wait_replicas` > 0 each
    connection's writes end with WAIT, and `wait()` raises `NotReplicated` (one Redis) or sends the
    batch again (a cluster) when too few replicas acknowledged them: the caller commits the batch's
    offsets only once its writes would survive a failover."""

    def __init__(self, store: FeatureStore, updates: list[UnitUpdate]) -> None:
        self._store = store
        self._updates = updates
        self._commands = [store._command(u) for u in updates]
        self._sent: list[tuple[Any, Any, list[int]]] = []  # (pool, connection, command indices)
        if updates:
            try:
                self._write(updates, self._commands)
            except CLUSTER_RETRYABLE:
                if not is_cluster(store._redis):
                    raise
                self._release_all(broken=True)  # `wait()` sends it again once the cluster answers

    def _write(self, updates: list[UnitUpdate], commands: list[bytes]) -> None:
        routes: dict[str, tuple[Any, list[int]]] = {}
        for i, update in enumerate(updates):
            name, pool = node_pool(self._store._redis, self._store.unit_key(update))
            routes.setdefault(name, (pool, []))[1].append(i)
        fence = self._store.fence_command()
        for pool, indices in routes.values():
            connection = pool.get_connection()
            self._sent.append((pool, connection, indices))
            try:
                connection.send_packed_command([b"".join(commands[i] for i in indices) + fence])
            except BaseException:
                self._release_all(broken=True)
                raise

    def abandon(self) -> None:
        """Drop the batch without reading its replies: the connections are closed, not reused."""
        self._release_all(broken=True)

    def _release_all(self, broken: bool = False) -> None:
        for pool, connection, _ in self._sent:
            if broken:
                connection.disconnect()
            pool.release(connection)
        self._sent = []

    def _read(self, expected: int) -> tuple[list[Any], list[redis.ResponseError]]:
        replies: list[Any] = [None] * expected
        errors: list[redis.ResponseError] = []
        lagging: list[str] = []
        replicas = self._store.wait_replicas
        try:
            for _, connection, indices in self._sent:
                for i in indices:
                    try:
                        replies[i] = connection.read_response()
                    except redis.ResponseError as exc:
                        errors.append(exc)
                if replicas > 0:  # the WAIT sent after this connection's writes
                    acknowledged = int(connection.read_response())
                    if acknowledged < replicas:
                        lagging.append(f"{connection.host}:{connection.port} ({acknowledged} of {replicas})")
        except BaseException:
            self._release_all(broken=True)
            raise
        self._release_all()
        self._store.round_trips += 1
        if lagging and not errors:
            raise NotReplicated(
                f"replicas did not acknowledge the batch within {self._store.wait_timeout_ms} ms on "
                f"{', '.join(lagging)}: not committing (the batch will be applied again)"
            )
        return replies, errors

    def _exchange(self, updates: list[UnitUpdate], commands: list[bytes], sent: bool) -> list[int]:
        """Replies to `commands` (already written when `sent`), the script reloaded if Redis lost it."""
        if not sent:
            self._write(updates, commands)
        replies, errors = self._read(len(updates))
        if errors and all(isinstance(e, redis.exceptions.NoScriptError) for e in errors):
            # Redis lost the script (a restart, SCRIPT FLUSH, a promoted replica that never ran it):
            # load it and resend the whole batch, safe because applied records are no-ops
            self._store._reload_script()
            self._write(updates, commands)
            replies, errors = self._read(len(updates))
        if errors:
            raise errors[0]
        return [int(r) for r in replies]

    def _round_trip(self, updates: list[UnitUpdate], commands: list[bytes] | None = None) -> list[int]:
        """The batch's replies, then (when asked) the replication fence; on a cluster, retried whole
        through MOVED, ASK, CLUSTERDOWN and lost connections."""
        store = self._store
        sent = commands is not None and bool(self._sent)
        commands = commands if commands is not None else [store._command(u) for u in updates]
        if not is_cluster(store._redis):
            return self._exchange(updates, commands, sent)
        error: Exception | None = None
        for attempt in retry_cluster(store._redis):
            try:
                return self._exchange(updates, commands, sent and attempt == 0)
            except (*CLUSTER_RETRYABLE, NotReplicated) as exc:
                self._release_all(broken=True)
                store.cluster_retries += 1
                log.warning(
                    "Redis answered %s: %s; re-reading the slot map and sending the batch again (attempt %d)",
                    type(exc).__name__, exc, attempt + 1,
                )  # fmt: skip
                error = exc
        raise error if error is not None else RuntimeError("no attempt made")

    def wait(self) -> int:
        if not self._updates:
            return 0
        applied, partly = 0, []
        for update, n in zip(self._updates, self._round_trip(self._updates, self._commands), strict=True):
            if n < 0:
                partly.append(update)
            elif update.unit == "user":
                applied += n
        if partly:  # a watermark inside a group: its events one at a time, in offset order
            singles = [single for update in partly for single in self._store._folder.one_by_one(update)]
            for single, n in zip(singles, self._round_trip(singles), strict=True):
                applied += n if single.unit == "user" else 0
        return applied
