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
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from tastemaker.features import keys
from tastemaker.features.definitions import FEATURES, RATIOS, Aggregation, Entity, FeatureDefinition
from tastemaker.features.updates import DECAY_TIME_SUFFIX, compile_plans, lua_dispatch, recent_lists
from tastemaker.v1 import records_pb2

# KEYS[1] = the unit's hash, KEYS[2..] = the user's recent-items sorted sets for this event type.
# ARGV[1] = one string of fields separated by \x1f (ids may not hold control characters): watermark
# field, offset, ttl_s, unit, type, shelf_id, item_id, event_time_ms, then VALUE_FIELDS. One
# argument instead of twelve: packing arguments was the processor's largest Python cost.
# sums and decayed values are written with 17 significant digits, exact for a double.
_APPLY_LUA_TEMPLATE = """
local ARGV = (function(packed)
  local out, i = {}, 1
  while true do
    local j = string.find(packed, '\\31', i, true)
    if not j then out[#out + 1] = string.sub(packed, i); return out end
    out[#out + 1] = string.sub(packed, i, j - 1)
    i = j + 1
  end
end)(ARGV[1])
local h = KEYS[1]
local ttl, unit, etype, shelf, item, t_text = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local t = tonumber(t_text)
-- The generated branch below only lists the updates; then one HMGET reads every field they
-- touch (and the watermark), and one HSET writes them all: 3 calls into Redis instead of ~15.
local ops, fields, recents = {}, {ARGV[1]}, {}
local function add(kind, f, a, b)
  ops[#ops + 1] = {kind, #fields + 1, a, b}
  fields[#fields + 1] = f
  if kind == 'd' then fields[#fields + 1] = f .. '@t' end
end
local function count(f) add('c', f) end
local function sum(f, x) add('s', f, x) end
local function last(f) add('l', f) end
local function decay(f, w, half_life) add('d', f, w, half_life) end
local function recent(k, max_items)
  if item ~= '' then recents[#recents + 1] = {k, max_items} end
end
__DISPATCH__
local old = redis.call('HMGET', h, unpack(fields))
if tonumber(old[1] or '-1') >= tonumber(ARGV[2]) then return 0 end
local out = {ARGV[1], ARGV[2]}
for _, op in ipairs(ops) do
  local kind, i, a, b = op[1], op[2], op[3], op[4]
  local f = fields[i]
  if kind == 'c' then
    out[#out + 1] = f
    out[#out + 1] = string.format('%d', (tonumber(old[i]) or 0) + 1)
  elseif kind == 's' then
    out[#out + 1] = f
    out[#out + 1] = string.format('%.17g', (tonumber(old[i]) or 0) + tonumber(a))
  elseif kind == 'l' then
    if (not old[i]) or t > tonumber(old[i]) then
      out[#out + 1] = f
      out[#out + 1] = t_text
    end
  else
    local v = tonumber(old[i]) or 0
    local tref = tonumber(old[i + 1] or t_text)
    if t >= tref then
      v = v * math.pow(2, -(t - tref) / b) + a
      tref = t
    else
      v = v + a * math.pow(2, -(tref - t) / b)
    end
    out[#out + 1] = f
    out[#out + 1] = string.format('%.17g', v)
    out[#out + 1] = f .. '@t'
    out[#out + 1] = string.format('%.17g', tref)
  end
end
redis.call('HSET', h, unpack(out))
redis.call('EXPIRE', h, ttl)
for _, r in ipairs(recents) do
  redis.call('ZADD', KEYS[r[1]], 'GT', t_text, item)
  redis.call('ZREMRANGEBYRANK', KEYS[r[1]], 0, -r[2] - 1)
  redis.call('EXPIRE', KEYS[r[1]], ttl)
end
return 1
"""


def apply_script(features: Sequence[FeatureDefinition] = FEATURES) -> str:
    return _APPLY_LUA_TEMPLATE.replace("__DISPATCH__", lua_dispatch(compile_plans(features)))


@dataclass(frozen=True)
class Provenance:
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
        return int(self.values.get(f"events.{event_type}.count", 0))

    def shelf_engagement(self, shelf_id: str) -> int:
        return int(self.keyed.get("shelf.engagement", {}).get(shelf_id, 0))

    def card_engagement(self, card_id: str) -> int:
        return int(self.keyed.get("card.engagement", {}).get(card_id, 0))

    def sticker_sends(self, sticker_id: str) -> int:
        return int(self.keyed.get("sticker.sends", {}).get(sticker_id, 0))

    def as_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, **self.values, **self.keyed}


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
    for name in raw:  # one pass over the hash for every per-shelf and per-item value
        feature_name, bar, sub_key = name.partition("|")
        if bar and not name.endswith(DECAY_TIME_SUFFIX) and feature_name in keyed_features:
            keyed[feature_name][sub_key] = _typed(raw, name, keyed_features[feature_name], as_of_ms)
    for ratio in RATIOS:
        denominator = sum(float(values.get(n, 0.0)) for n in ratio.denominators)
        numerator = sum(float(values.get(n, 0.0)) for n in ratio.numerators)
        values[ratio.name] = numerator / denominator if denominator else ratio.default
    return UserFeatures(user_id, values, keyed)


class FeatureReader(Protocol):
    def read(self, user_id: str) -> UserFeatures: ...


def _decode_hash(raw: dict[Any, Any]) -> dict[str, str]:  # the client returns bytes
    return {k.decode(): v.decode() for k, v in raw.items()}


class FeatureStore:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "tm",
        ttl_s: int = 30 * 24 * 3600,
        features: Sequence[FeatureDefinition] = FEATURES,
    ) -> None:
        self._redis = client
        self._namespace = namespace
        self._ttl_s = ttl_s
        self._features = tuple(features)
        self._recent_names = [f.name for f in self._features if f.aggregation is Aggregation.RECENT_ITEMS]
        plans = compile_plans(self._features)
        self._recent_by_type = {t: recent_lists(plans, t) for t in plans["user"]}
        self._item_types = frozenset(plans["item"])
        self._script = apply_script(self._features)
        self._sha = hashlib.sha1(self._script.encode()).hexdigest().encode()
        # "*N $7 EVALSHA $40 <sha> $1 <numkeys>", by number of keys
        self._evalsha_heads = [
            b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$%d\r\n%d\r\n" % (4 + n, self._sha, len(str(n)), n) for n in range(8)
        ]
        self.round_trips = 0

    # -- writes ---------------------------------------------------------------------------
    def apply(self, batch: Sequence[tuple[records_pb2.UserEvent, Provenance]]) -> int:
        """Apply a batch of events in one pipelined round trip, in order.

        Returns how many events changed their user's features (the rest were redeliveries)."""
        return self.send(batch).wait()

    def send(self, batch: Sequence[tuple[records_pb2.UserEvent, Provenance]]) -> PendingApply:
        """Write the batch's updates to Redis without waiting for them; `wait()` on the result."""
        ns, ttl = self._namespace, str(self._ttl_s).encode()
        commands: list[bytes] = []
        is_user: list[bool] = []
        for event, source in batch:
            user_keys = [keys.user_features(ns, event.user_id)]
            user_keys += [
                keys.recent_items(ns, event.user_id, name) for name in self._recent_by_type.get(event.type, ())
            ]
            head = b"%s\x1f%d\x1f%s" % (
                keys.watermark_field(source.topic, source.partition).encode(),
                source.offset,
                ttl,
            )
            tail = b"\x1f".join((
                event.type.encode(), event.shelf_id.encode(), event.item_id.encode(), b"%d" % event.event_time_ms,
                repr(event.value).encode(), repr(event.listened_seconds).encode(),
                repr(event.track_length_seconds).encode(), b"%d" % event.dwell_ms,
            ))  # fmt: skip
            commands.append(self._evalsha([k.encode() for k in user_keys], head + b"\x1fuser\x1f" + tail))
            is_user.append(True)
            if event.item_id and event.type in self._item_types:
                item_key = keys.item_features(ns, event.item_id).encode()
                commands.append(self._evalsha([item_key], head + b"\x1fitem\x1f" + tail))
                is_user.append(False)
        return PendingApply(self, b"".join(commands), is_user)

    def _evalsha(self, script_keys: list[bytes], packed_args: bytes) -> bytes:
        """One EVALSHA in the Redis protocol, packed here: redis-py's packer was most of the cost."""
        out = [self._evalsha_heads[len(script_keys)]]
        out += [b"$%d\r\n%s\r\n" % (len(k), k) for k in script_keys]
        out.append(b"$%d\r\n%s\r\n" % (len(packed_args), packed_args))
        return b"".join(out)

    def _reload_script(self) -> None:
        self._redis.script_load(self._script)

    # -- reads ----------------------------------------------------------------------------
    def _queue_user(self, pipe: Any, user_id: str) -> None:
        pipe.hgetall(keys.user_features(self._namespace, user_id))
        for name in self._recent_names:
            pipe.zrevrange(keys.recent_items(self._namespace, user_id, name), 0, -1)

    def _from_replies(self, user_id: str, replies: list[Any], as_of_ms: int) -> UserFeatures:
        raw = _decode_hash(replies[0])
        recent = {
            name: [keys.text(x) for x in items] for name, items in zip(self._recent_names, replies[1:], strict=True)
        }
        return user_features_from(user_id, raw, recent, as_of_ms, self._features)

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
    next batch while Redis runs this one. `wait()` returns how many events were new."""

    def __init__(self, store: FeatureStore, payload: bytes, is_user: list[bool]) -> None:
        self._store = store
        self._payload = payload
        self._is_user = is_user
        self._pool = store._redis.connection_pool
        self._connection: Any = None
        if is_user:
            self._write()

    def _write(self) -> None:
        self._connection = self._pool.get_connection()
        try:
            self._connection.send_packed_command([self._payload])
        except BaseException:
            self._release(broken=True)
            raise

    def abandon(self) -> None:
        """Drop the batch without reading its replies: the connection is closed, not reused."""
        self._release(broken=True)

    def _release(self, broken: bool = False) -> None:
        if self._connection is not None:
            if broken:
                self._connection.disconnect()
            self._pool.release(self._connection)
            self._connection = None

    def _read(self) -> tuple[list[Any], list[redis.ResponseError]]:
        replies: list[Any] = []
        errors: list[redis.ResponseError] = []
        try:
            for _ in self._is_user:
                try:
                    replies.append(self._connection.read_response())
                except redis.ResponseError as exc:
                    errors.append(exc)
                    replies.append(None)
        except BaseException:
            self._release(broken=True)
            raise
        self._release()
        self._store.round_trips += 1
        return replies, errors

    def wait(self) -> int:
        if not self._is_user:
            return 0
        replies, errors = self._read()
        if errors and all(isinstance(e, redis.exceptions.NoScriptError) for e in errors):
            # Redis lost the script (a restart, SCRIPT FLUSH): load it and resend the whole batch,
            # which is safe because already-applied records are no-ops under the watermarks.
            self._store._reload_script()
            self._write()
            replies, errors = self._read()
        if errors:
            raise errors[0]
        return sum(int(r) for r, user in zip(replies, self._is_user, strict=True) if user)
