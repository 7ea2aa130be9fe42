"""The online learner of the linear strategies: rewarded home decisions → the shared posterior;
rewarded sticker decisions → the sticker re-rank's (`bandits/sticker_rerank.py`, level "sticker").

For every shown shelf, a row x = [1, log(1 + the user's engagement with the shelf)] with the row's
reward (clicks on the shelf and its cards) and the shelf's id (its own term, `LinearState`); for
every shown card, x from the card's engagement with its own reward and id; for every shelf shown
under an explanation, a row of level "explanation" from the shelf's engagement with the row's
reward and the explanation's id. Engagement comes from the feature vector the decision logged,
so the model learns from exactly what the ranker saw. With `online` (`OnlineFeatures`, serving's
TASTEMAKER_LINEAR_FEATURES=context) x is instead `page.online_rows` of what the decision logged:
its context, the user's activity, the caller's candidate features and the explanation.
For every suggested sticker, x = `sticker_rerank.rerank_features` of what was logged (its
model-score rank, the user's sends of it, the position it was shown at), with reward the sends
of it and its id. Offsets are committed after Redis has the update.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from tastemaker.bandits.online_features import OnlineFeatures
from tastemaker.bandits.page import online_rows
from tastemaker.bandits.sticker_rerank import LEVEL as STICKER_LEVEL
from tastemaker.bandits.sticker_rerank import RERANK_DIM, rerank_features
from tastemaker.features.dead_letters import dead_letter, send_dead_letter
from tastemaker.features.linear_store import LinearStateStore, Rows
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


def _linear(engagement: list[float], reward: list[float], items: list[str]) -> Rows:
    """x = [1, log(1 + engagement)] per row."""
    x = np.ones((len(items), 2))
    x[:, 1] = np.log1p(np.asarray(engagement, dtype=np.float64))
    return Rows(x, np.asarray(reward, dtype=np.float64), items)


#: one level's rows as plain lists — engagement, reward, item — turned into `Rows` by `_linear`
#: once per batch (building arrays per decision costs more than the learning itself)
Lists = tuple[list[float], list[float], list[str]]


def home_lists(rewarded: records_pb2.RewardedDecision) -> dict[str, Lists]:
    """What one rewarded home decision teaches each level ("shelf", "card"), as lists."""
    decision = rewarded.decision
    vector = LoggedVector.of(decision)
    reward_of: dict[str, float] = defaultdict(float)
    for outcome in rewarded.outcomes:
        reward_of[outcome.item_id] += outcome.reward
    shelves: Lists = ([], [], [])
    cards: Lists = ([], [], [])
    explanations: Lists = ([], [], [])
    for shelf in decision.shown:
        card_ids = [c.card_id for c in shelf.cards]
        card_rewards = [reward_of.get(c, 0.0) for c in card_ids]
        engagement = vector.value(SHELF, shelf.shelf_id)
        row_reward = reward_of.get(shelf.shelf_id, 0.0) + sum(card_rewards)
        shelves[0].append(engagement)
        shelves[1].append(row_reward)
        shelves[2].append(shelf.shelf_id)
        cards[0].extend(vector.value(CARD, c) for c in card_ids)
        cards[1].extend(card_rewards)
        cards[2].extend(card_ids)
        if shelf.explanation_id:
            explanations[0].append(engagement)
            explanations[1].append(row_reward)
            explanations[2].append(shelf.explanation_id)
    return {"shelf": shelves, "card": cards, "explanation": explanations}


def rows_of(rewarded: records_pb2.RewardedDecision, online: OnlineFeatures | None = None) -> dict[str, Rows]:
    """The rows one rewarded home decision teaches each level ("shelf", "card", "explanation"): over
    [1, log(1 + engagement)], or with `online` its encoding of what the decision logged."""
    lists = home_lists(rewarded)
    if online is None:
        return {level: _linear(*level_lists) for level, level_lists in lists.items()}
    decision = rewarded.decision
    vector = LoggedVector.of(decision)
    counts, context = vector.counts(), dict(decision.context)
    candidates = {s.shelf_id: s for s in decision.candidates}
    x: dict[str, list[np.ndarray]] = {"shelf": [], "card": [], "explanation": []}
    for shelf in decision.shown:
        logged = candidates.get(shelf.shelf_id)
        features = dict(logged.features) if logged is not None else {}
        engagement = np.array([vector.value(SHELF, shelf.shelf_id)])
        x["shelf"].append(online_rows(online, "shelf", [shelf.shelf_id], engagement, context, [features], counts))
        card_ids = [c.card_id for c in shelf.cards]
        own = logged.card_features if logged is not None else {}
        card_features = [dict(own[c].values) if c in own else {} for c in card_ids]
        card_engagement = np.array([vector.value(CARD, c) for c in card_ids], dtype=np.float64)
        x["card"].append(online_rows(online, "card", card_ids, card_engagement, context, card_features, counts))
        if shelf.explanation_id:
            said = [shelf.explanation_id]
            x["explanation"].append(
                online_rows(online, "explanation", said, engagement, context, [features], counts, said)
            )
    return {
        level: Rows(
            np.concatenate(x[level]) if x[level] else np.zeros((0, online.dim)),
            np.asarray(lists[level][1], dtype=np.float64),
            lists[level][2],
        )
        for level in x
    }


def _unlearnable(lists: Lists) -> tuple[float, float, str] | None:
    """The first row whose x or reward would not be finite (Redis refuses inf, and the posterior
    must never hold it), or None."""
    for engagement, reward, item in zip(*lists, strict=True):
        if not (math.isfinite(engagement) and engagement > -1.0 and math.isfinite(reward)):
            return engagement, reward, item
    return None


def sticker_rows_of(rewarded: records_pb2.RewardedDecision) -> Rows:
    """The row (x, sends, sticker id) of each suggestion one rewarded sticker decision showed, from
    the model scores and sends it logged for its candidates."""
    decision = rewarded.decision
    empty = Rows.empty(RERANK_DIM)
    if not decision.shown:
        return empty
    ids = list(decision.shown[0].card_candidates.item_ids)
    values = np.asarray(decision.feature_values, dtype=np.float64)
    if len(values) < 2 * len(ids):
        return empty
    position = np.zeros(len(ids))
    where = {sticker_id: i for i, sticker_id in enumerate(ids)}
    cards = [c for c in decision.shown[0].cards if c.card_id in where]
    for card in cards:
        position[where[card.card_id]] = card.position
    x = rerank_features(values[: len(ids)], values[len(ids) : 2 * len(ids)], position)
    sent: dict[str, float] = defaultdict(float)
    for outcome in rewarded.outcomes:
        sent[outcome.item_id] += outcome.reward
    rows = [where[c.card_id] for c in cards]
    return Rows(x[rows].reshape(len(rows), -1), np.array([sent[c.card_id] for c in cards]), [c.card_id for c in cards])


class LinearLearner:
    def __init__(
        self,
        consumer: Consumer,
        store: LinearStateStore,
        producer: Producer,
        dlq_topic: str,
        sticker_store: LinearStateStore | None = None,
        online: OnlineFeatures | None = None,
    ) -> None:
        """`sticker_store`: the sticker re-rank's posterior (its own features); None: sticker
        decisions are not learned from. `online`: learn on `OnlineFeatures` (as serving ranks with
        them under TASTEMAKER_LINEAR_FEATURES=context), not on [1, log(1 + engagement)]."""
        self._consumer = consumer
        self._store = store
        self._online = online
        self._stores = {"shelf": store, "card": store, "explanation": store}
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
        # per (level, topic, partition): home levels' rows as lists (offsets beside them), stickers' as Rows
        home: dict[tuple[str, str, int], tuple[list[int], Lists]] = {}
        stickers: dict[tuple[str, str, int], list[tuple[int, Rows]]] = defaultdict(list)
        encoded: dict[tuple[str, str, int], list[tuple[int, Rows]]] = defaultdict(list)  # home, with `online`
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
            if surface == "home" and self._online is not None:
                taught = rows_of(rewarded, self._online)
                bad = next((level for level, rows in taught.items() if not rows.finite()), None)
                if bad is not None:
                    self._dead_letter(record, f"cannot apply: non-finite reward or feature at level {bad}")
                    continue
                for level, rows in taught.items():
                    if len(rows):
                        encoded[(level, record.topic, record.partition)].append((record.offset, rows))
            elif surface == "home":
                home_taught = home_lists(rewarded)
                unlearnable = (_unlearnable(lists) for lists in home_taught.values())
                first_bad = next((row for row in unlearnable if row is not None), None)
                if first_bad is not None:
                    self._dead_letter(record, f"cannot apply: non-finite reward or feature ({first_bad!r})")
                    continue
                for level, (engagement, reward, items) in home_taught.items():
                    if not items:
                        continue
                    row_offsets, (all_engagement, all_reward, all_items) = home.setdefault(
                        (level, record.topic, record.partition), ([], ([], [], []))
                    )
                    row_offsets.extend([record.offset] * len(items))
                    all_engagement.extend(engagement)
                    all_reward.extend(reward)
                    all_items.extend(items)
            else:
                sticker_rows = sticker_rows_of(rewarded)
                if not sticker_rows.finite():
                    row = next(r for r in sticker_rows if not (np.isfinite(r[0]).all() and np.isfinite(r[1])))
                    self._dead_letter(record, f"cannot apply: non-finite reward or feature ({row!r})")
                    continue
                if len(sticker_rows):
                    stickers[(STICKER_LEVEL, record.topic, record.partition)].append((record.offset, sticker_rows))
            self.stats.decisions += 1
        applied: set[str] = set()
        for (level, topic, partition), (home_offsets, lists) in home.items():
            self.stats.rows_applied += self._stores[level].apply(
                level, topic, partition, np.array(home_offsets), _linear(*lists)
            )
            applied.add(level)
        for (level, topic, partition), batch in (*stickers.items(), *encoded.items()):
            sticker_offsets = np.repeat([offset for offset, _ in batch], [len(rows) for _, rows in batch])
            concatenated = Rows.concat([rows for _, rows in batch], self._stores[level].dim)
            self.stats.rows_applied += self._stores[level].apply(level, topic, partition, sticker_offsets, concatenated)
            applied.add(level)
        for store in {id(s): s for s in self._stores.values()}.values():
            store.fence({level for level in applied if self._stores[level] is store})
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
