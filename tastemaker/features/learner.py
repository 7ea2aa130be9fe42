"""The online learner of the linear strategies: rewarded home decisions → the shared posterior;
rewarded sticker decisions → the sticker re-rank's (`bandits/sticker_rerank.py`, level "sticker").

For every shown shelf, a row x = [1, log(1 + the user's engagement with the shelf)] with the row's
reward (clicks on the shelf and its cards) and the shelf's id (its own term, `LinearState`); for
every shown card, x from the card's engagement with its own reward and id. Engagement comes from
the feature vector the decision logged, so the model learns from exactly what the ranker saw.
For every suggested sticker, x = `sticker_rerank.rerank_features` of what was logged (its
model-score rank, the user's sends of it, the position it was shown at), with reward the sends
of it and its id. Offsets are committed after Redis has the update.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from tastemaker.bandits.sticker_rerank import LEVEL as STICKER_LEVEL
from tastemaker.bandits.sticker_rerank import rerank_features
from tastemaker.features.dead_letters import dead_letter, send_dead_letter
from tastemaker.features.linear_store import LinearStateStore
from tastemaker.messaging.codec import UndecodableRecord, decode
from tastemaker.messaging.ports import Consumer, Producer, Record
from tastemaker.records.activation import counted
from tastemaker.records.feature_vector import CARD, SHELF, LoggedVector
from tastemaker.records.layout import LayoutError, unpack_rewarded
from tastemaker.v1 import records_pb2

log = logging.getLogger(__name__)


@dataclass
class LearnerStats:
    decisions: int = 0
    rows_applied: int = 0
    skipped: int = 0
    failures: int = 0
    #: deferred decisions never activated: not learned from
    unactivated: int = 0


def rows_of(rewarded: records_pb2.RewardedDecision) -> dict[str, list[tuple[np.ndarray, float, str]]]:
    """The (x, reward, item id) rows one rewarded decision teaches each level."""
    decision = rewarded.decision
    vector = LoggedVector.of(decision)
    reward_of: dict[str, float] = defaultdict(float)
    for outcome in rewarded.outcomes:
        reward_of[outcome.item_id] += outcome.reward
    out: dict[str, list[tuple[np.ndarray, float, str]]] = {"shelf": [], "card": []}
    for shelf in decision.shown:
        row_reward = reward_of[shelf.shelf_id] + sum(reward_of[c.card_id] for c in shelf.cards)
        x = np.array([1.0, np.log1p(vector.value(SHELF, shelf.shelf_id))])
        out["shelf"].append((x, row_reward, shelf.shelf_id))
        for card in shelf.cards:
            x = np.array([1.0, np.log1p(vector.value(CARD, card.card_id))])
            out["card"].append((x, reward_of[card.card_id], card.card_id))
    return out


def sticker_rows_of(rewarded: records_pb2.RewardedDecision) -> list[tuple[np.ndarray, float, str]]:
    """The (x, sends, sticker id) row of each suggestion one rewarded sticker decision showed, from
    the model scores and sends it logged for its candidates."""
    decision = rewarded.decision
    if not decision.shown:
        return []
    ids = list(decision.shown[0].card_candidates.item_ids)
    values = np.asarray(decision.feature_values, dtype=np.float64)
    if len(values) < 2 * len(ids):
        return []
    position = np.zeros(len(ids))
    where = {sticker_id: i for i, sticker_id in enumerate(ids)}
    cards = [c for c in decision.shown[0].cards if c.card_id in where]
    for card in cards:
        position[where[card.card_id]] = card.position
    x = rerank_features(values[: len(ids)], values[len(ids) : 2 * len(ids)], position)
    sent: dict[str, float] = defaultdict(float)
    for outcome in rewarded.outcomes:
        sent[outcome.item_id] += outcome.reward
    return [(x[where[c.card_id]], sent[c.card_id], c.card_id) for c in cards]


class LinearLearner:
    def __init__(
        self,
        consumer: Consumer,
        store: LinearStateStore,
        producer: Producer,
        dlq_topic: str,
        sticker_store: LinearStateStore | None = None,
    ) -> None:
        """`sticker_store`: the sticker re-rank's posterior (its own features); None: sticker
        decisions are not learned from."""
        self._consumer = consumer
        self._store = store
        self._stores = {"shelf": store, "card": store}
        if sticker_store is not None:
            self._stores[STICKER_LEVEL] = sticker_store
        self._producer = producer
        self._dlq_topic = dlq_topic
        self.stats = LearnerStats()

    def consume_once(self, timeout_s: float = 0.2) -> int:
        records = self._consumer.poll(timeout_s)
        if not records:
            return 0
        skipped_before = self.stats.skipped
        batches: dict[tuple[str, str, int], list[tuple[int, np.ndarray, float, str]]] = defaultdict(list)
        for record in records:
            rewarded = records_pb2.RewardedDecision()
            try:
                unpack_rewarded(decode(record.value, record.headers, rewarded))
            except (UndecodableRecord, LayoutError) as exc:
                self._dead_letter(record, str(exc))
                continue
            surface = rewarded.decision.surface
            if surface != "home" and not (surface == "stickers" and STICKER_LEVEL in self._stores):
                continue
            if not counted(rewarded):  # deferred and never activated: the user did not see it
                self.stats.unactivated += 1
                continue
            taught = rows_of(rewarded) if surface == "home" else {STICKER_LEVEL: sticker_rows_of(rewarded)}
            bad = [r for rows in taught.values() for x, r, _ in rows if not (np.isfinite(x).all() and np.isfinite(r))]
            if bad:  # e.g. a reward of inf: Redis refuses it, and the posterior must never hold it
                self._dead_letter(record, f"cannot apply: non-finite reward or feature ({bad[0]!r})")
                continue
            self.stats.decisions += 1
            for level, rows in taught.items():
                batches[(level, record.topic, record.partition)].extend((record.offset, x, r, i) for x, r, i in rows)
        for (level, topic, partition), batch in batches.items():
            self.stats.rows_applied += self._stores[level].apply(level, topic, partition, batch)
        for store in {id(s): s for s in self._stores.values()}.values():
            store.fence({level for level, _, _ in batches if self._stores[level] is store})
        if dead_letters := self.stats.skipped - skipped_before:
            self._producer.flush()
            log.warning("learner dead-lettered %d records of this batch", dead_letters)
        self._consumer.commit()
        return len(records)

    def _dead_letter(self, record: Record, reason: str) -> None:
        self.stats.skipped += 1
        log.warning(
            "dead-lettering rewarded record %s:%d@%d: %s", record.topic, record.partition, record.offset, reason
        )
        send_dead_letter(self._producer, self._dlq_topic, dead_letter(record, reason, "learner"))

    def close(self) -> None:
        self._consumer.close()
        self._producer.close()

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop`; a failed step (Redis or the broker away) rewinds to the last commit
        and retries, so nothing is skipped and the thread never dies of it."""
        log.info("linear learner started")
        while not stop.is_set():
            try:
                self.consume_once()
            except Exception:
                self.stats.failures += 1
                log.exception("learner step failed; rewinding to the last commit, retry in 1 s")
                stop.wait(1.0)
                try:
                    self._consumer.rewind()
                except Exception:
                    log.exception("rewind failed; will retry")
        log.info("linear learner stopped: %s", self.stats)
