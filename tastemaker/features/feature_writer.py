"""The online feature store's write side.

Each event's updates (`updates.py`, folded per batch by `folding.py`) are applied per atomic unit —
one user, or one item — by one Lua call that also advances that unit's per-partition offset
watermark. A record whose offset is at or below the watermark was applied before (a redelivery
after a crash or a rebalance) and changes nothing: exactly-once effect, with O(partitions) state
per unit and no cross-slot keys, so it works on Redis Cluster as is. The writer owns its script and
packs its commands itself; `PendingApply` sends them, one packed write per server.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import redis

from tastemaker.features import keys
from tastemaker.features.definitions import FEATURES, Aggregation, FeatureDefinition
from tastemaker.features.folding import BatchFolder, Provenance, UnitUpdate
from tastemaker.features.lua import SPLIT_LUA
from tastemaker.features.pseudonyms import Pseudonyms
from tastemaker.features.redis_connect import (
    CLUSTER_RETRYABLE,
    NotReplicated,
    is_cluster,
    node_pool,
    retry_cluster,
)
from tastemaker.v1 import records_pb2

log = logging.getLogger(__name__)

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
    SPLIT_LUA
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


class FeatureWriter:
    """Applies batches of (event, provenance) to Redis, exactly once per record."""

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
        #: the Redis (or Redis Cluster) client the batches go to
        self.client = client
        #: users are stored under their pseudonym when a key is configured (`features.pseudonyms`)
        self._pseudonyms = pseudonyms or Pseudonyms()
        #: replicas that must hold each applied batch before `wait()` returns (0: no fence)
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        #: batches sent again after a cluster redirect, election or lost connection
        self.cluster_retries = 0
        self._namespace = namespace
        self._ttl_s = ttl_s
        self.folder = BatchFolder(tuple(features))
        self._sha = hashlib.sha1(_APPLY_LUA.encode()).hexdigest().encode()
        recent = sum(1 for f in features if f.aggregation is Aggregation.RECENT_ITEMS)
        # "*N $7 EVALSHA $40 <sha> $1 <numkeys>", by number of keys
        self._evalsha_heads = [
            b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$%d\r\n%d\r\n" % (4 + n, self._sha, len(str(n)), n)
            for n in range(recent + 2)
        ]
        self.round_trips = 0

    def apply(self, batch: Sequence[tuple[records_pb2.UserEvent, Provenance]]) -> int:
        """Apply a batch of events in one pipelined round trip, in order.

        Returns how many events changed their user's features (the rest were redeliveries)."""
        return self.send(batch).wait()

    def send(self, batch: Iterable[tuple[records_pb2.UserEvent, Provenance]]) -> PendingApply:
        """Write the batch's updates to Redis without waiting for them; `wait()` on the result."""
        return PendingApply(self, self.folder.fold(batch))

    def command(self, update: UnitUpdate) -> bytes:
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

    def reload_script(self) -> None:
        """Load the apply script (Redis lost it: a restart, SCRIPT FLUSH, a promoted replica)."""
        self.client.script_load(_APPLY_LUA)

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

    def __init__(self, store: FeatureWriter, updates: list[UnitUpdate]) -> None:
        self._store = store
        self._updates = updates
        self._commands = [store.command(u) for u in updates]
        self._sent: list[tuple[Any, Any, list[int]]] = []  # (pool, connection, command indices)
        if updates:
            try:
                self._write(updates, self._commands)
            except CLUSTER_RETRYABLE:
                if not is_cluster(store.client):
                    raise
                self._release_all(broken=True)  # `wait()` sends it again once the cluster answers

    def _write(self, updates: list[UnitUpdate], commands: list[bytes]) -> None:
        routes: dict[str, tuple[Any, list[int]]] = {}
        for i, update in enumerate(updates):
            name, pool = node_pool(self._store.client, self._store.unit_key(update))
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
            self._store.reload_script()
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
        commands = commands if commands is not None else [store.command(u) for u in updates]
        if not is_cluster(store.client):
            return self._exchange(updates, commands, sent)
        error: Exception | None = None
        for attempt in retry_cluster(store.client):
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
            singles = [single for update in partly for single in self._store.folder.one_by_one(update)]
            for single, n in zip(singles, self._round_trip(singles), strict=True):
                applied += n if single.unit == "user" else 0
        return applied
