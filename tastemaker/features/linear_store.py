"""The linear strategies' posterior (LinUCB, Thompson) in Redis, so that every serving process
ranks with the same model, updated online from `tastemaker.rewarded` within seconds.

One hash per level (`shelf`, `card`; `sticker`, the sticker re-rank's, in a store of its own
width), keyed `{ns}:{linear:<level>}` (one Redis Cluster slot):
fields `a:i:j` and `b:i` hold Σ x xᵀ and Σ r x (the ridge prior λI is added on load), `version`
counts updates, and `wm:<topic>:<partition>` is the last offset applied from each partition.
Each item's own sums live in the same hash (`n:<id>`, `s:<id>`, and with forgetting `t:<id>`,
the `decisions` count at its last update). An update is exactly-once: the learner reads the
watermark, sums the records after it, and a Lua script applies the sums only if the watermark is
still what it read (else it reads again).

With `forget` γ < 1 the store keeps the discounted sums of `LinearState(forget=γ)`: each rewarded
decision (one record, one offset) first discounts the past by γ. A batch of m decisions applies
A ← γᵐ·A + Σₜ γ^(m−t)·Xₜᵀ Xₜ (t = 1…m in offset order), and the same for b — in one script, so
the result equals m single updates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

import numpy as np
import redis

from tastemaker.bandits.strategies import LinearState
from tastemaker.features import keys
from tastemaker.features.redis_connect import Fence

LEVELS = ("shelf", "card")

_APPLY = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current or '') ~= ARGV[2] then return 0 end
local decay = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
for i = 6, 5 + 2 * n, 2 do
  if decay == 1 then
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    local old = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
    redis.call('HSET', KEYS[1], ARGV[i], string.format('%.17g', old * decay + tonumber(ARGV[i + 1])))
  end
end
-- the items' own sums: discounted lazily, by gamma to the decisions since each item's last update
local base = 6 + 2 * n
local gamma = tonumber(ARGV[base])
local count = tonumber(redis.call('HGET', KEYS[1], 'decisions') or '0') + tonumber(ARGV[base + 1])
local q = tonumber(ARGV[base + 2])
for j = base + 3, base + 2 + 3 * q, 3 do
  local id = ARGV[j]
  if gamma == 1 then
    redis.call('HINCRBYFLOAT', KEYS[1], 'n:' .. id, ARGV[j + 1])
    redis.call('HINCRBYFLOAT', KEYS[1], 's:' .. id, ARGV[j + 2])
  else
    local since = count - tonumber(redis.call('HGET', KEYS[1], 't:' .. id) or count)
    local f = gamma ^ since
    local old_n = tonumber(redis.call('HGET', KEYS[1], 'n:' .. id) or '0')
    local old_s = tonumber(redis.call('HGET', KEYS[1], 's:' .. id) or '0')
    redis.call('HSET', KEYS[1], 'n:' .. id, string.format('%.17g', old_n * f + tonumber(ARGV[j + 1])),
      's:' .. id, string.format('%.17g', old_s * f + tonumber(ARGV[j + 2])), 't:' .. id, string.format('%d', count))
  end
end
redis.call('HSET', KEYS[1], 'decisions', string.format('%d', count))
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
"""


class LinearStateStore:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "tm",
        dim: int = 2,
        ridge: float = 1.0,
        forget: float = 1.0,
        fence: Fence | None = None,
    ) -> None:
        if not 0.0 < forget <= 1.0:
            raise ValueError(f"`forget` must be in (0, 1], got {forget}")
        self._redis = client
        self._ns = namespace
        self.dim = dim
        self.ridge = ridge
        self.forget = forget
        self._apply = client.register_script(_APPLY)
        self._fence = fence or Fence()

    def fence(self, levels: Iterable[str]) -> None:
        """Replicas hold these levels' applied updates (`redis_connect.Fence`; no-op when off)."""
        self._fence(self._redis, [keys.linear_state(self._ns, level) for level in levels])

    def load(self, levels: Sequence[str] = LEVELS) -> dict[str, tuple[LinearState, int]]:
        """Each level's posterior and version, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for level in levels:
            pipe.hgetall(keys.linear_state(self._ns, level))
        out = {}
        for level, raw in zip(levels, pipe.execute(), strict=True):
            fields = {k.decode(): v.decode() for k, v in raw.items()}
            state = LinearState(self.dim, self.ridge)
            for i in range(self.dim):
                state.b[i] = float(fields.get(f"b:{i}", 0.0))
                for j in range(self.dim):
                    state.a[i, j] += float(fields.get(f"a:{i}:{j}", 0.0))
            decisions = int(fields.get("decisions", 0))
            for name, value in fields.items():
                if name.startswith("n:"):
                    item = name[2:]
                    since = decisions - int(fields.get(f"t:{item}", decisions))
                    factor = self.forget**since if self.forget < 1.0 else 1.0
                    state.items[item] = (float(value) * factor, float(fields.get(f"s:{item}", 0.0)) * factor)
            out[level] = (state, int(fields.get("version", 0)))
        return out

    def apply(
        self,
        level: str,
        topic: str,
        partition: int,
        rows: Iterable[tuple[int, np.ndarray, float, str]],
        retries: int = 5,
    ) -> int:
        """Add the rows (offset, x, reward, item id) past this partition's watermark; returns how
        many rows were applied (0 for a redelivered batch)."""
        rows = list(rows)
        key, watermark = keys.linear_state(self._ns, level), f"wm:{topic}:{partition}"
        for _ in range(retries):
            raw = self._redis.hget(key, watermark)
            seen = int(raw) if raw is not None else -1
            fresh = [row for row in rows if row[0] > seen]
            if not fresh:
                return 0
            x = np.array([row[1] for row in fresh], dtype=np.float64)
            reward = np.array([row[2] for row in fresh], dtype=np.float64)
            offsets = np.array([row[0] for row in fresh])
            decisions = np.unique(offsets)  # sorted; each offset is one rewarded decision
            # a row's weight: γ to the number of decisions after its own in this batch
            weight = self.forget ** (len(decisions) - 1 - np.searchsorted(decisions, offsets))
            delta_a, delta_b = (x * weight[:, None]).T @ x, x.T @ (weight * reward)
            expected = "" if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)
            decay = repr(float(self.forget ** len(decisions)))
            args: list[str | float] = [watermark, expected, int(offsets.max()), decay]
            pairs = [(f"a:{i}:{j}", delta_a[i, j]) for i in range(self.dim) for j in range(self.dim)]
            pairs += [(f"b:{i}", delta_b[i]) for i in range(self.dim)]
            args.append(len(pairs))
            for name, value in pairs:
                args += [name, repr(float(value))]
            item_sums: dict[str, list[float]] = {}
            for (_, _, r, item), w in zip(fresh, weight.tolist(), strict=True):
                sums = item_sums.setdefault(item, [0.0, 0.0])
                sums[0] += w
                sums[1] += w * r
            args += [repr(float(self.forget)), len(decisions), len(item_sums)]
            for item, (count, total) in item_sums.items():
                args += [item, repr(count), repr(total)]
            if self._apply(keys=[key], args=args):
                return len(fresh)
        raise RuntimeError(f"the {level} posterior kept changing under this learner: another learner owns {topic}")


class SharedLinearStates:
    """The serving side: the strategies' LinearState objects, refreshed in place from Redis at
    most every `refresh_s` seconds (a failed refresh keeps the last model and is logged once)."""

    def __init__(self, store: LinearStateStore, refresh_s: float = 1.0, levels: Sequence[str] = LEVELS) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self.levels = tuple(levels)
        self.states = {level: LinearState(store.dim, store.ridge) for level in self.levels}
        self.version = {level: 0 for level in self.levels}
        self._last = 0.0
        self._lock = threading.Lock()
        self.failures = 0

    def maybe_refresh(self) -> None:
        now = time.monotonic()
        if now - self._last < self.refresh_s or not self._lock.acquire(blocking=False):
            return
        try:
            self._last = now
            loaded = self.store.load(self.levels)
            for level, (state, version) in loaded.items():
                self.states[level].a[:] = state.a
                self.states[level].b[:] = state.b
                self.states[level].items = state.items
                self.version[level] = version
        except redis.RedisError:
            self.failures += 1  # ranking goes on with the last model
        finally:
            self._lock.release()
