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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import redis

from tastemaker.bandits.strategies import LinearState
from tastemaker.features import keys
from tastemaker.features.redis_connect import Fence

#: the home levels: shelves, cards, and the explanation a shown shelf is shown under
LEVELS = ("shelf", "card", "explanation")


@dataclass(frozen=True)
class Rows:
    """What a level learns from: one row per shown shelf, card or sticker — features `x` (n × dim),
    `reward` (n) and the item each row is about. Iterating gives (x, reward, item) per row."""

    x: np.ndarray
    reward: np.ndarray
    items: list[str]

    @classmethod
    def empty(cls, dim: int) -> Rows:
        return cls(np.zeros((0, dim)), np.zeros(0), [])

    @classmethod
    def concat(cls, parts: Sequence[Rows], dim: int) -> Rows:
        if not parts:
            return cls.empty(dim)
        return cls(
            np.concatenate([p.x for p in parts]), np.concatenate([p.reward for p in parts]),
            [item for p in parts for item in p.items],
        )  # fmt: skip

    def finite(self) -> bool:
        return bool(np.isfinite(self.x).all() and np.isfinite(self.reward).all())

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[tuple[np.ndarray, float, str]]:
        return iter(zip(self.x, self.reward.tolist(), self.items, strict=True))


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
        variant: str = "",
    ) -> None:
        """`variant`: a name for the feature set (the levels' hashes become `linear:<level>/<variant>`),
        so posteriors over different features never mix."""
        if not 0.0 < forget <= 1.0:
            raise ValueError(f"`forget` must be in (0, 1], got {forget}")
        self._redis = client
        self._ns = namespace
        self.dim = dim
        self.ridge = ridge
        self.forget = forget
        self._apply = client.register_script(_APPLY)
        self._fence = fence or Fence()
        self._variant = variant

    def key(self, level: str) -> str:
        return keys.linear_state(self._ns, f"{level}/{self._variant}" if self._variant else level)

    def fence(self, levels: Iterable[str]) -> None:
        """Replicas hold these levels' applied updates (`redis_connect.Fence`; no-op when off)."""
        self._fence(self._redis, [self.key(level) for level in levels])

    def load(self, levels: Sequence[str] = LEVELS) -> dict[str, tuple[LinearState, int]]:
        """Each level's posterior and version, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for level in levels:
            pipe.hgetall(self.key(level))
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

    def apply(self, level: str, topic: str, partition: int, offsets: np.ndarray, rows: Rows, retries: int = 5) -> int:
        """Add the rows past this partition's watermark (`offsets[i]`: the offset of the rewarded
        decision that taught row i); returns how many rows were applied (0 for a redelivered batch)."""
        offsets = np.asarray(offsets, dtype=np.int64)
        key, watermark = self.key(level), f"wm:{topic}:{partition}"
        for _ in range(retries):
            raw = self._redis.hget(key, watermark)
            seen = int(raw) if raw is not None else -1
            keep = offsets > seen
            if not keep.any():
                return 0
            x, reward, fresh = rows.x[keep], rows.reward[keep], offsets[keep]
            decisions = np.unique(fresh)  # sorted; each offset is one rewarded decision
            # a row's weight: γ to the number of decisions after its own in this batch
            weight = self.forget ** (len(decisions) - 1 - np.searchsorted(decisions, fresh))
            delta_a, delta_b = (x * weight[:, None]).T @ x, x.T @ (weight * reward)
            expected = "" if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)
            decay = repr(float(self.forget ** len(decisions)))
            args: list[str | float] = [watermark, expected, int(fresh.max()), decay]
            pairs = [(f"a:{i}:{j}", delta_a[i, j]) for i in range(self.dim) for j in range(self.dim)]
            pairs += [(f"b:{i}", delta_b[i]) for i in range(self.dim)]
            args.append(len(pairs))
            for name, value in pairs:
                args += [name, repr(float(value))]
            items = [item for item, k in zip(rows.items, keep.tolist(), strict=True) if k]
            names, which = np.unique(np.array(items, dtype=object), return_inverse=True)
            counts = np.bincount(which, weights=weight, minlength=len(names))
            totals = np.bincount(which, weights=weight * reward, minlength=len(names))
            args += [repr(float(self.forget)), len(decisions), len(names)]
            for item, count, total in zip(names.tolist(), counts.tolist(), totals.tolist(), strict=True):
                args += [item, repr(count), repr(total)]
            if self._apply(keys=[key], args=args):
                return int(keep.sum())
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
