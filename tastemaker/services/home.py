"""Home-shelf ranking: reads the user's features, scores shelves and cards, explores,
and logs the decision with every propensity, score and feature used."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tastemaker.bandits.catalog import Catalog, ShelfCandidates
from tastemaker.bandits.online_features import OnlineFeatures
from tastemaker.bandits.page import HomePage, PageInputs, draw_page
from tastemaker.bandits.reward_features import COUNT_TYPES
from tastemaker.bandits.reward_models import RewardModel
from tastemaker.bandits.strategies import Strategy, with_floor
from tastemaker.features.store import FeatureReader, RankingFeatures
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.records.feature_vector import home_names as feature_vector_names
from tastemaker.records.ids import DecisionIds
from tastemaker.records.layout import LAYOUT_PACKED, logged_shelves, packed_home_page, unpack
from tastemaker.services.breaker import CircuitBreaker
from tastemaker.services.errors import InvalidArgument
from tastemaker.services.exploration import exploration_log
from tastemaker.services.feature_reads import GuardedFeatureReads, read_ranking_features
from tastemaker.services.limits import (
    MAX_DECISION_LOG_BYTES,
)
from tastemaker.services.privacy import LogPolicy
from tastemaker.services.requests import HomeRequest
from tastemaker.services.security import current_client
from tastemaker.services.serving_metrics import DecisionMetrics
from tastemaker.services.shadow import ShadowRunner
from tastemaker.v1 import api_pb2, records_pb2

log = logging.getLogger(__name__)


def feature_vector(
    features: RankingFeatures, shelves: Sequence[ShelfCandidates]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The exact vector scored and logged: per-type counts, then per-shelf and per-card engagement
    (named by `records.feature_vector.home_names`, in that order).

    Returns (values, per-shelf card engagement)."""
    ends = np.cumsum([len(s.card_ids) for s in shelves]).tolist()
    card_engagement = [features.cards[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    values = np.concatenate([features.counts, features.shelves, features.cards])
    return values, card_engagement


class HomeRankingService:
    """RankHome: the user's features (behind the breaker), the page drawn (`bandits.page`), its
    decision log published, and the answer — each derived from the one drawn page.

    `explanation_strategy` draws each shown shelf's explanation; it must be the shelves' strategy
    with the same parameters (only a linear strategy's posterior differs, its "explanation" level):
    the log records one exploration, and replay re-runs it for both. `online`: what the linear
    strategies see (`bandits.page.PageInputs.online`)."""

    #: appended to the strategy's name in `policy` when features are unavailable
    FALLBACK_SUFFIX = "/no-features"

    def __init__(
        self,
        features: FeatureReader,
        catalog: Catalog,
        model: RewardModel,
        strategy: Strategy,
        publish: Callable[[str, bytes, bytes | None, dict[str, bytes] | None], bool],
        decisions_topic: str,
        default_max_shelves: int,
        default_max_cards: int,
        reward_window_s: float,
        rng: np.random.Generator | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        card_strategy: Strategy | None = None,
        propensity_floor: float = 0.0,
        explanation_strategy: Strategy | None = None,
        online: OnlineFeatures | None = None,
        before_rank: Callable[[], None] | None = None,
        shadow: ShadowRunner | None = None,
        breaker: CircuitBreaker | None = None,
        decision_ids: DecisionIds | None = None,
        log_policy: LogPolicy | None = None,
    ) -> None:
        self._catalog = catalog
        self._model = model
        self._shelf_strategy = with_floor(strategy, propensity_floor)
        self._card_strategy = with_floor(card_strategy or strategy, propensity_floor)
        self._explanation_strategy = with_floor(explanation_strategy or strategy, propensity_floor)
        self._online = online
        self._before_rank = before_rank
        self._shadow = shadow
        self._publish = publish
        self._decisions_topic = decisions_topic
        self._default_max_shelves = default_max_shelves
        self._default_max_cards = default_max_cards
        self._reward_window_ms = int(reward_window_s * 1000)
        self._rng = rng or np.random.default_rng()
        self._clock_ms = clock_ms
        self.decisions_served = 0
        self.metrics = DecisionMetrics()
        self._decision_ids = decision_ids or DecisionIds()
        self._log_policy = log_policy or LogPolicy()
        self._reads = GuardedFeatureReads(features, breaker)

    @property
    def feature_failures(self) -> int:
        """Feature reads that failed (the store unreachable or too slow)."""
        return self._reads.failures

    def set_model(self, model: RewardModel) -> None:
        """Swap the reward model (one reference assignment: requests in flight keep the old one)."""
        self._model = model

    def rank(self, request: HomeRequest) -> records_pb2.DecisionLog:
        """Decide the page, publish its decision log, and return that log, written out."""
        decision = records_pb2.DecisionLog()
        decision.CopyFrom(self._decide(request)[0])
        return unpack(decision)

    def rank_home(self, request: HomeRequest) -> ServedPage:
        """RankHome: decide the page and publish its decision log."""
        return ServedPage(*self._decide(request))

    def _decide(self, request: HomeRequest) -> tuple[records_pb2.DecisionLog, HomePage]:
        if self._before_rank is not None:
            self._before_rank()  # e.g. pick up the shared linear posterior, at most once a second
        shelves = request.candidates or self._catalog.shelves
        policy = self._shelf_strategy.name
        features = self._reads.read(request.user_id, shelves)
        if features is None:  # a feature-store outage degrades ranking, it does not fail it
            features = read_ranking_features(None, request.user_id, shelves)
            policy = f"{policy}{self.FALLBACK_SUFFIX}"
        values, card_engagement = feature_vector(features, shelves)
        inputs = PageInputs(
            shelves=shelves,
            counts=values[: len(COUNT_TYPES)],
            shelf_engagement=features.shelves,
            card_engagement=card_engagement,
            context=request.context,
            max_shelves=request.max_shelves or self._default_max_shelves,
            max_cards=request.max_cards_per_shelf or self._default_max_cards,
            pinned=request.pinned,
            excluded=request.excluded,
            online=self._online,
            online_context=self._log_policy.context(request.context) if self._online is not None else None,
        )
        model = self._model  # one version scores the whole request, even if a swap lands meanwhile
        page = draw_page(
            model, self._shelf_strategy, self._card_strategy, inputs, self._rng, self._explanation_strategy
        )
        not_free = request.excluded | {shelf_id for _, shelf_id in request.pinned}
        free = [i for i, s in enumerate(shelves) if s.shelf_id not in not_free]
        served, shadow = page, None
        if self._shadow is not None:
            candidate = draw_page(
                self._shadow.model, self._shelf_strategy, self._card_strategy, inputs, self._shadow.rng,
                self._explanation_strategy,
            )  # fmt: skip
            shadow = self._shadow.judge(candidate, logged_shelves(candidate.rows), page.shelf_scores, free)
            if self._shadow.serves_candidate():  # an apprentice that agrees often enough takes over
                served = candidate
        decision = self._decision_log(request, inputs, served, policy, values, free)
        if shadow is not None:
            decision.shadow.CopyFrom(shadow)
        payload = decision.SerializeToString()
        if len(payload) > MAX_DECISION_LOG_BYTES:  # refused before anything is shown: no unlogged answer
            raise InvalidArgument(
                "candidates",
                f"make a decision log of {len(payload):,} bytes, over the {MAX_DECISION_LOG_BYTES:,} one Kafka "
                "record carries: send fewer candidates or excluded ids, shorter ids or a smaller context",
            )
        self._publish(self._decisions_topic, payload, decision.decision_id.encode(), PROTOBUF_HEADERS)
        self.decisions_served += 1
        self.metrics.observe("home", decision.policy, decision.model_version, served.propensities())
        return decision, served

    def _decision_log(
        self,
        request: HomeRequest,
        inputs: PageInputs,
        page: HomePage,
        policy: str,
        values: np.ndarray,
        free: list[int],
    ) -> records_pb2.DecisionLog:
        """The served page's decision log: packed, or written out when it cannot be packed exactly."""
        served_at_ms = self._clock_ms()
        client = current_client.get()
        decision = records_pb2.DecisionLog(
            decision_id=self._decision_ids.mint(served_at_ms, self._reward_window_ms, client),
            request_id=request.request_id,
            user_id=self._log_policy.user(request.user_id),
            surface="home",
            served_at_ms=served_at_ms,
            policy=policy,
            model_version=page.model_version,
            exploration=exploration_log(self._shelf_strategy, len(free), inputs.max_shelves),
            context=self._log_policy.context(request.context),
            ranking_propensity=page.ranking_probability,
            max_shelves=inputs.max_shelves,
            max_cards_per_shelf=inputs.max_cards,
            reward_window_ms=self._reward_window_ms,
            # the rows the pinned shelves were shown at (a pin below the page's last row moves up)
            pinned_shelves=[api_pb2.PinnedShelf(shelf_id=i, position=p) for p, i in page.pinned],
            excluded_item_ids=sorted(request.excluded),
            client_id=client,
            deferred=request.deferred,
        )
        shelves = tuple(inputs.shelves)
        packed = packed_home_page(shelves, values, free, page.shelf_scores[free], page.rows)
        if packed is not None:
            decision.layout = LAYOUT_PACKED
            decision.packed.CopyFrom(packed)
            return decision
        # not exactly packable (a control character in an id; explanations or caller features): written out
        decision.feature_names.extend(
            feature_vector_names([s.shelf_id for s in shelves], [c for s in shelves for c in s.card_ids])
        )
        decision.feature_values.extend(values.tolist())
        if request.candidates and len(request.candidate_messages) == len(shelves):
            decision.candidates.extend(request.candidate_messages)  # as the request sent them
        else:
            decision.candidates.extend(candidate_shelf(s) for s in shelves)
        decision.shelf_candidates.item_ids.extend(shelves[i].shelf_id for i in free)
        decision.shelf_candidates.scores.extend(page.shelf_scores[free].tolist())
        decision.shown.extend(logged_shelves(page.rows))
        return decision


def candidate_shelf(shelf: ShelfCandidates) -> api_pb2.Shelf:
    """A candidate shelf as the written-out decision log holds it (with its explanations and features)."""
    message = api_pb2.Shelf(shelf_id=shelf.shelf_id, card_ids=shelf.card_ids, explanation_ids=shelf.explanation_ids)
    if shelf.features:
        message.features.update(shelf.features)
    for card_id, features in shelf.card_features.items():
        message.card_features[card_id].values.update(features)
    return message


@dataclass(frozen=True)
class ServedPage:
    """A page served: its decision log (as published) and the page itself."""

    decision: records_pb2.DecisionLog
    page: HomePage


def rank_home_response(served: ServedPage) -> api_pb2.RankHomeResponse:
    """The app's answer: the served page, under the decision's id; rows are shown, and logged, at
    0, 1, 2, ... in this order (`RankedShelf.position`)."""
    decision, page = served.decision, served.page
    return api_pb2.RankHomeResponse(
        decision_id=decision.decision_id,
        policy=decision.policy,
        model_version=decision.model_version,
        shelves=[
            api_pb2.RankedShelf(
                shelf_id=row.shelf_id,
                score=row.score,
                propensity=row.propensity,
                cards=[
                    api_pb2.RankedCard(card_id=c, score=cs, propensity=cp)
                    for c, cs, cp in zip(row.cards, row.shown_card_scores, row.card_propensities, strict=True)
                ],
                position=row.position,
                explanation_id=row.explanation_id,
                explanation_propensity=row.explanation_propensity if row.explanation_id else 0.0,
            )
            for row in page.rows
        ],
    )
