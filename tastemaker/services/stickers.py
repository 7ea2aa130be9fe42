"""SuggestStickers: encode the message, find candidates in the ANN index (filtered to the user's
language) and, for a bundle trained on pairs, among its head's likeliest stickers; re-rank them with
an exploration strategy over the re-rank's scores (`bandits/sticker_rerank.py`: static, model score
+ 0.1·log(1 + the user's sends of each sticker from the feature store's `sticker.sends`, or learned
online from what people send), and log the decision — model score and sends of every candidate,
every suggestion's propensity, the re-rank used — like the home page's.

Garbage in gets a clear error or a sensible answer: an empty message is INVALID_ARGUMENT naming
`message`; a message over `MAX_MESSAGE_CHARS` is cut to it; emoji-only and mixed-script messages
are encoded like any other (their characters are features); a message with no features at all
(e.g. only spaces after normalisation) is INVALID_ARGUMENT.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tastemaker.bandits.sticker_rerank import RERANKS, LearnedReRank, rerank_arm, static_scores
from tastemaker.bandits.strategies import Candidates, EpsilonGreedy, Strategy, rank_with_constraints
from tastemaker.features.topics import Topics
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.records.feature_vector import sticker_names
from tastemaker.records.ids import DecisionIds
from tastemaker.services.errors import InvalidArgument
from tastemaker.services.exploration import exploration_log
from tastemaker.services.privacy import LogPolicy
from tastemaker.services.requests import StickerRequest
from tastemaker.services.security import current_client
from tastemaker.stickers.bundle import Bundle
from tastemaker.stickers.catalog import Sticker
from tastemaker.stickers.scoring import CANDIDATES, candidates
from tastemaker.stickers.text import normalise
from tastemaker.stickers.typeahead import complete
from tastemaker.v1 import api_pb2, records_pb2

log = logging.getLogger(__name__)


@dataclass
class StickerReRanking:
    """Which re-rank serves (`TASTEMAKER_STICKER_RERANK`): "static", "learned" (from the shared
    posterior the learner keeps, refreshed at most every second; static until it has learned), or
    "side-by-side": each user stably in one of the two (`rerank_arm`), to compare them in one run.
    The decision logs the one used under context["rerank"]."""

    mode: str
    learned: LearnedReRank | None = None
    refresh: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        if self.mode not in (*RERANKS, "side-by-side"):
            raise ValueError(f"unknown sticker re-rank {self.mode!r}: static, learned or side-by-side")
        if self.mode != "static" and self.learned is None:
            raise ValueError(f"the {self.mode} re-rank needs the learned posterior")

    def scores(
        self, user_id: str, ids: Sequence[str], model_score: np.ndarray, sends: np.ndarray
    ) -> tuple[str, np.ndarray]:
        """(the re-rank used, each candidate's score)."""
        arm = rerank_arm(user_id) if self.mode == "side-by-side" else self.mode
        if arm == "static" or self.learned is None:
            return "static", static_scores(model_score, sends)
        self.refresh()
        return "learned", self.learned.scores(ids, model_score, sends)


@dataclass(frozen=True)
class Suggestion:
    sticker_id: str
    score: float
    propensity: float


@dataclass(frozen=True)
class SuggestResult:
    decision: records_pb2.DecisionLog
    suggestions: list[Suggestion]


class StickerService:
    def __init__(
        self,
        bundle: Bundle,
        strategy: Strategy | None = None,
        publish: Callable[[str, bytes, bytes | None, dict[str, bytes] | None], bool] = lambda *a: True,
        decisions_topic: str = Topics().decisions,
        engagement: Callable[[str, Sequence[str]], np.ndarray] | None = None,
        rng: np.random.Generator | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        decision_ids: DecisionIds | None = None,
        reward_window_ms: int = 30_000,
        log_policy: LogPolicy | None = None,
        candidates: int = CANDIDATES,
        rerank: StickerReRanking | None = None,
    ) -> None:
        self._candidates = candidates
        #: static, learned from sends, or both side by side (`StickerReRanking`); static by default
        self._rerank = rerank or StickerReRanking("static")
        #: what a request reads once: the encoder, the index it built, the head and the catalog, swapped together
        self._bundle = bundle
        self._decision_ids = decision_ids or DecisionIds()
        self._log_policy = log_policy or LogPolicy()
        #: how long a ReportOutcome for a suggestion is accepted (when decision ids are signed)
        self._reward_window_ms = reward_window_ms
        self._strategy = strategy or EpsilonGreedy(0.1)
        self._publish = publish
        self._topic = decisions_topic
        self._engagement = engagement
        self._rng = rng or np.random.default_rng()
        self._clock_ms = clock_ms

    @property
    def catalog(self) -> Mapping[str, Sticker]:
        return self._bundle.catalog

    @property
    def version(self) -> str:
        return f"{self._bundle.encoder.version}+{self._bundle.index.index.version}"

    def known_stickers(self) -> Container[str]:
        """The sticker ids the served index holds (a device decision naming others is foreign)."""
        return self._bundle.index.index

    def device_bundle_path(self) -> Path | None:
        """The device bundle of the sticker bundle being served (GetDeviceBundle)."""
        return self._bundle.device_bundle

    def swap(self, bundle: Bundle) -> None:
        """Serve another bundle from the next request on (one assignment: a request in flight
        finishes with the bundle it started with)."""
        self._bundle = bundle

    def suggest(
        self,
        user_id: str,
        message: str,
        language: str = "",
        k: int = 5,
        previous_message: str = "",
        partial: bool = False,
    ) -> SuggestResult:
        """`suggest_stickers` from plain values (the CLI, tests), checked as a request is."""
        return self.suggest_stickers(StickerRequest(user_id, message, language, k, previous_message, partial))

    def suggest_stickers(self, request: StickerRequest) -> SuggestResult:
        """SuggestStickers: candidates from the model, re-ranked, explored, logged and published."""
        user_id, language, k = request.user_id, request.language, request.k
        bundle = self._bundle  # one bundle for the whole request
        text = complete(request.message, bundle.prefixes) if request.partial else request.message
        encoder, index = bundle.encoder, bundle.index.index
        vector = encoder.messages([text])[0]
        if not vector.any():  # the encoder maps a text without features to the zero vector
            raise InvalidArgument("message", "has nothing to match on after normalisation")
        previous = request.previous_message
        ids, _, model_score = candidates(bundle, text, vector, self._candidates, language or None, previous)
        if not ids:
            raise InvalidArgument("language", f"no sticker has phrases in {language!r}")
        sends = np.zeros(len(ids))
        if self._engagement is not None:
            try:
                sends = np.asarray(self._engagement(user_id, ids), dtype=np.float64)
            except Exception as exc:  # a feature-store outage degrades the re-rank, it does not fail it
                log.warning("sticker features unavailable for %s, ranking by the model score: %s", user_id, exc)
        arm, scores = self._rerank.scores(user_id, ids, model_score, sends)
        placement = rank_with_constraints(
            self._strategy, Candidates(ids, scores, np.column_stack([np.ones(len(ids)), scores])), k, self._rng
        )
        served_at_ms = self._clock_ms()
        decision = records_pb2.DecisionLog(
            decision_id=self._decision_ids.mint(served_at_ms, self._reward_window_ms, current_client.get()),
            user_id=self._log_policy.user(user_id),
            surface="stickers",
            served_at_ms=served_at_ms,
            policy=self._strategy.name,
            model_version=f"{encoder.version}+{index.version}",
            exploration=exploration_log(self._strategy, len(ids), k),
            context=self._log_policy.context(
                {"language": language, "message": normalise(text)[:200]}
                | ({"previous_message": normalise(previous)[:200]} if previous.strip() else {})
                | ({"partial": normalise(request.message)[:200]} if request.partial else {})
                | {"rerank": arm}
            ),
            feature_names=sticker_names(ids),
            feature_values=model_score.tolist() + sends.tolist(),
            ranking_propensity=placement.ranking_probability,
            reward_window_ms=self._reward_window_ms,
            client_id=current_client.get(),
        )
        row = decision.shown.add(shelf_id="stickers", position=0, propensity=1.0)
        row.cards_ranking_propensity = placement.ranking_probability
        row.card_candidates.item_ids.extend(ids)
        row.card_candidates.scores.extend(scores.tolist())
        suggestions = []
        for sticker_id, position, propensity in zip(
            placement.ids, placement.positions, placement.propensities, strict=True
        ):
            score = placement.scores[sticker_id]
            row.cards.add(card_id=sticker_id, position=position, score=score, propensity=float(propensity))
            suggestions.append(Suggestion(sticker_id, score, float(propensity)))
        self._publish(self._topic, decision.SerializeToString(), decision.decision_id.encode(), PROTOBUF_HEADERS)
        return SuggestResult(decision, suggestions)


def suggest_stickers_response(result: SuggestResult) -> api_pb2.SuggestStickersResponse:
    decision = result.decision
    return api_pb2.SuggestStickersResponse(
        decision_id=decision.decision_id,
        policy=decision.policy,
        model_version=decision.model_version,
        suggestions=[
            api_pb2.StickerSuggestion(sticker_id=s.sticker_id, score=s.score, propensity=s.propensity)
            for s in result.suggestions
        ],
    )
