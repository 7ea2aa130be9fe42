"""The reward joiner: decisions ⨝ outcomes by `decision_id` within a reward window.

Pending decisions and their outcomes live in Redis (not in process memory), so offsets can
be committed as soon as Redis has a record and a restarted joiner loses nothing. When a
decision's window closes it is published to `tastemaker.rewarded` with the outcomes that
arrived in time, or with the default reward when none did. Outcomes for items the decision
did not show, late outcomes and undecodable records go to the dead-letter topic.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tastemaker.features import keys
from tastemaker.features.dead_letters import dead_letter, send_dead_letter
from tastemaker.features.redis_connect import Fence
from tastemaker.features.topics import Topics
from tastemaker.messaging.codec import PROTOBUF_HEADERS, UndecodableRecord, decode
from tastemaker.messaging.ports import Consumer, Producer, Record
from tastemaker.rate_limited_log import RateLimitedLog
from tastemaker.records.ids import DecisionIds
from tastemaker.records.layout import LayoutError, shown_ids
from tastemaker.v1 import records_pb2

log = logging.getLogger(__name__)

#: How long a closed decision is remembered, to recognise late outcomes.
CLOSED_MEMORY_S = 24 * 3600
#: How long an outcome waits for a decision that has not arrived yet.
ORPHAN_OUTCOME_TTL_S = 24 * 3600


@dataclass
class JoinerStats:
    decisions: int = 0
    outcomes: int = 0
    outcomes_joined: int = 0
    rewarded: int = 0
    defaulted: int = 0
    #: outcomes that came after their decision's reward window had closed (dead-lettered)
    late: int = 0
    rejected: int = 0
    #: activations of deferred decisions, and deferred decisions published without one
    activations: int = 0
    unactivated: int = 0


class RecordRejected(ValueError):
    pass


def _parse(record: Record, message: records_pb2.DecisionLog | records_pb2.Outcome) -> None:
    try:
        decode(record.value, record.headers, message)
    except UndecodableRecord as exc:
        raise RecordRejected(str(exc)) from exc
    if not message.decision_id:
        raise RecordRejected(f"{type(message).__name__} without `decision_id`")


def record_id(record: Record) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"


class RewardJoiner:
    def __init__(
        self,
        consumer: Consumer,
        client: redis.Redis,
        producer: Producer,
        topics: Topics,
        namespace: str = "tm",
        default_reward: float = 0.0,
        reward_range: tuple[float, float] = (-1000.0, 1000.0),
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        fence: Fence | None = None,
        decision_ids: DecisionIds | None = None,
    ) -> None:
        self._consumer = consumer
        #: outcomes naming a forged, foreign or expired decision id are dead-lettered, never joined
        self._decision_ids = decision_ids or DecisionIds()
        self._redis = client
        #: replicas hold a batch's state before its offsets are committed (`redis_connect.Fence`)
        self._fence = fence or Fence()
        self._producer = producer
        self._topics = topics
        self._ns = namespace
        self._default_reward = default_reward
        self._reward_range = reward_range
        self._clock_ms = clock_ms
        self.stats = JoinerStats()
        self._rejected_log = RateLimitedLog(log)
        self._late_log = RateLimitedLog(log)

    # -- intake ---------------------------------------------------------------------------
    def consume_once(self, timeout_s: float = 0.2) -> int:
        records = self._consumer.poll(timeout_s)
        if not records:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        outcomes: list[tuple[Record, records_pb2.Outcome]] = []
        rejects = 0
        for record in records:
            try:
                if record.topic == self._topics.decisions:
                    self._stage_decision(pipe, record)
                else:
                    outcome = records_pb2.Outcome()
                    _parse(record, outcome)
                    self._check_reward(outcome)
                    self._check_decision_id(outcome)
                    outcomes.append((record, outcome))
            except RecordRejected as exc:
                rejects += 1
                self._reject(record, str(exc))
        rejects += self._stage_outcomes(pipe, outcomes)
        pipe.execute()
        self._fence(self._redis, self._written(records, outcomes))
        if rejects:
            self._producer.flush()
        self._consumer.commit()
        return len(records)

    def _written(self, records: list[Record], outcomes: list[tuple[Record, records_pb2.Outcome]]) -> list[str]:
        """Keys a batch may have written: the decisions' (each key's decision id is its record key),
        the outcomes' decisions, and the deadlines."""
        written = [keys.joiner_deadlines(self._ns)]
        written += [
            keys.decision(self._ns, r.key.decode(errors="replace"))
            for r in records
            if r.topic == self._topics.decisions and r.key
        ]
        written += [
            (keys.decision_activated if o.activation else keys.decision_outcomes)(self._ns, o.decision_id)
            for _, o in outcomes
        ]
        return written

    def _check_decision_id(self, outcome: records_pb2.Outcome) -> None:
        why = self._decision_ids.check(
            outcome.decision_id, outcome.client_id, outcome.reported_at_ms or self._clock_ms()
        )
        if why is not None:
            raise RecordRejected(f"decision id {outcome.decision_id!r} {why}")

    def _check_reward(self, outcome: records_pb2.Outcome) -> None:
        if outcome.activation:
            return  # an activation carries no reward
        low, high = self._reward_range
        if not (math.isfinite(outcome.reward) and low <= outcome.reward <= high):
            raise RecordRejected(f"reward {outcome.reward} is outside the valid range [{low:g}, {high:g}]")

    def _stage_decision(self, pipe: redis.client.Pipeline, record: Record) -> None:
        decision = records_pb2.DecisionLog()
        _parse(record, decision)
        try:
            shown_ids(decision)  # a packed page that does not decode is refused now, with the reason
        except (LayoutError, IndexError, ValueError) as exc:
            raise RecordRejected(f"undecodable packed decision {decision.decision_id}: {exc}") from exc
        deadline_ms = decision.served_at_ms + decision.reward_window_ms
        ttl_s = max(60, (deadline_ms - self._clock_ms()) // 1000 + ORPHAN_OUTCOME_TTL_S)
        pipe.set(keys.decision(self._ns, decision.decision_id), decision.SerializeToString(), ex=ttl_s)
        pipe.zadd(keys.joiner_deadlines(self._ns), {decision.decision_id: deadline_ms})
        self.stats.decisions += 1

    def _stage_outcomes(self, pipe: redis.client.Pipeline, outcomes: list[tuple[Record, records_pb2.Outcome]]) -> int:
        """Stage a batch's outcomes; one round trip finds those whose window already closed.

        Returns how many were rejected as late."""
        if not outcomes:
            return 0
        check = self._redis.pipeline(transaction=False)
        for _, outcome in outcomes:
            check.exists(keys.decision_closed(self._ns, outcome.decision_id))
        late = 0
        for (record, outcome), closed in zip(outcomes, check.execute(), strict=True):
            if closed:
                late += 1
                self.stats.late += 1
                self._reject(
                    record, f"late outcome: the reward window of {outcome.decision_id} had closed", self._late_log
                )
                continue
            if outcome.activation:  # deferred activation: the decision was seen; not a reward
                pipe.set(keys.decision_activated(self._ns, outcome.decision_id), b"1", ex=ORPHAN_OUTCOME_TTL_S)
                self.stats.activations += 1
                continue
            outcomes_key = keys.decision_outcomes(self._ns, outcome.decision_id)
            # a hash by outcome_id: a redelivered outcome overwrites itself instead of counting twice
            pipe.hset(outcomes_key, outcome.outcome_id or record_id(record), outcome.SerializeToString())
            pipe.expire(outcomes_key, ORPHAN_OUTCOME_TTL_S)
            self.stats.outcomes += 1
        return late

    def _reject(self, record: Record, reason: str, lines: RateLimitedLog | None = None) -> None:
        """Dead-letter `record` with `reason`, logged (late outcomes, which a client with a slow
        reporting path sends by the thousand, at most one line per 10 s with a count)."""
        (lines or self._rejected_log).warning(
            "joiner rejected a record from %s@%d: %s", record.topic, record.offset, reason
        )
        send_dead_letter(self._producer, self._topics.events_dlq, dead_letter(record, reason, "joiner"))
        self.stats.rejected += 1

    # -- closing windows ------------------------------------------------------------------
    def close_due(self, now_ms: int | None = None, batch: int = 500) -> int:
        """Publish every decision whose window closed by `now_ms`; returns how many."""
        now_ms = self._clock_ms() if now_ms is None else now_ms
        deadlines = keys.joiner_deadlines(self._ns)
        due = [keys.text(d) for d in self._redis.zrangebyscore(deadlines, "-inf", now_ms, start=0, num=batch)]
        if not due:
            return 0
        read = self._redis.pipeline(transaction=False)
        for decision_id in due:
            read.get(keys.decision(self._ns, decision_id))
            read.hvals(keys.decision_outcomes(self._ns, decision_id))
            read.exists(keys.decision_activated(self._ns, decision_id))
        raw = read.execute()
        for i, decision_id in enumerate(due):
            log_bytes, outcome_bytes, activated = raw[3 * i], raw[3 * i + 1], raw[3 * i + 2]
            if log_bytes is None:  # expired; nothing to publish
                log.warning("decision %s expired before its window closed", decision_id)
                continue
            self._publish(log_bytes, outcome_bytes, bool(activated), now_ms)
        self._producer.flush()
        # Only after the rewarded records are acknowledged do we forget the pending state.
        done = self._redis.pipeline(transaction=False)
        for decision_id in due:
            done.delete(keys.decision(self._ns, decision_id))  # one key per DEL: a cluster pipeline allows no more
            done.delete(keys.decision_outcomes(self._ns, decision_id))
            done.delete(keys.decision_activated(self._ns, decision_id))
            done.set(keys.decision_closed(self._ns, decision_id), b"1", ex=CLOSED_MEMORY_S)
            done.zrem(deadlines, decision_id)
        done.execute()
        self._fence(self._redis, [deadlines, *(keys.decision(self._ns, d) for d in due)])
        return len(due)

    def _publish(self, log_bytes: bytes, outcome_bytes: list[bytes], activated: bool, now_ms: int) -> None:
        decision = records_pb2.DecisionLog.FromString(log_bytes)
        shown = shown_ids(decision)  # it decoded when it was staged
        rewarded = records_pb2.RewardedDecision(
            decision=decision, joined_at_ms=now_ms, activated=decision.deferred and activated
        )
        self.stats.unactivated += decision.deferred and not activated
        for raw in outcome_bytes:
            outcome = records_pb2.Outcome.FromString(raw)
            if outcome.item_id in shown:
                rewarded.outcomes.append(outcome)
            else:
                fake = Record(self._topics.outcomes, -1, -1, outcome.decision_id.encode(), raw)
                self._reject(fake, f"outcome for item {outcome.item_id!r} that decision did not show")
        rewarded.defaulted = not rewarded.outcomes
        # each outcome is in the valid range and counted once per outcome id, so the sum is finite
        rewarded.reward = self._default_reward if rewarded.defaulted else math.fsum(o.reward for o in rewarded.outcomes)
        self._producer.send(
            self._topics.rewarded,
            rewarded.SerializeToString(),
            key=decision.decision_id.encode(),
            headers=PROTOBUF_HEADERS,
        )
        self.stats.rewarded += 1
        self.stats.defaulted += rewarded.defaulted
        self.stats.outcomes_joined += len(rewarded.outcomes)

    def pending(self) -> int:
        return int(self._redis.zcard(keys.joiner_deadlines(self._ns)))

    def close(self) -> None:
        self._consumer.close()
        self._producer.close()

    def run(self, stop: threading.Event) -> None:
        log.info("reward joiner started")
        while not stop.is_set():
            try:
                self.consume_once()
                self.close_due()
            except Exception:
                log.exception("reward joiner step failed; rewinding to the last commit, retry in 1 s")
                stop.wait(1.0)
                try:
                    self._consumer.rewind()
                except Exception:
                    log.exception("rewind failed; will retry")
        log.info("reward joiner stopped: %s", self.stats)
