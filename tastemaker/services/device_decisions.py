"""ReportDeviceDecisions: suggestion lists a device showed offline (`tastemaker.device.runtime`),
uploaded later in batches with the stickers the user sent from them, brought into the same loop as
the server's own decisions.

Each valid upload becomes a `DecisionLog` of surface `stickers-device` (its device decision id and
the uploading client recorded) on `tastemaker.decisions`, and each send an `Outcome` on
`tastemaker.outcomes`, so the joiner joins them as it joins the server's and `evaluate` / `retrain
--surface stickers` read both, told apart by surface. The decision id is minted here at upload
(signed when decision ids are), and the reward window starts at the upload, so sends reported with
it are never late.

Nothing is counted twice: the first upload of a (client, device decision id) claims it in Redis
(SET NX, kept as long as an upload may be late); a repeat — a retried call, a replayed batch — is
answered as a duplicate and publishes nothing. Each decision is checked on its own and a bad one is
rejected with its index and the reason, the others still accepted: too old or from the future,
malformed (ids, lengths, scores, positions, propensities that are not its exploration's exact
ones), foreign (stickers this server's model does not know, or a model that is not a device bundle),
or sends of stickers it did not show. A batch over `MAX_DEVICE_DECISIONS` is INVALID_ARGUMENT.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Container
from dataclasses import dataclass, field

import numpy as np

from tastemaker.bandits import epsilon_greedy
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.rate_limited_log import RateLimitedLog
from tastemaker.records.feature_vector import sticker_names
from tastemaker.records.ids import DecisionIds
from tastemaker.records.surfaces import STICKERS_DEVICE
from tastemaker.services.errors import InvalidArgument
from tastemaker.services.exploration import exploration_log
from tastemaker.services.limits import (
    MAX_DEVICE_CANDIDATES,
    MAX_DEVICE_CLOCK_AHEAD_MS,
    MAX_DEVICE_DECISION_AGE_MS,
    MAX_DEVICE_DECISIONS,
    MAX_ID_LENGTH,
    MAX_STICKERS,
    check_id,
)
from tastemaker.services.privacy import LogPolicy
from tastemaker.services.requests import outcome_id
from tastemaker.services.security import current_client
from tastemaker.stickers.text import MAX_MESSAGE_CHARS, normalise
from tastemaker.v1 import api_pb2, records_pb2

log = logging.getLogger(__name__)
#: how exactly an uploaded propensity must equal its exploration's (a float printed and parsed)
PROPENSITY_TOLERANCE = 1e-9


class Rejected(ValueError):
    """One uploaded decision is refused; the message says why, `kind` (too_old, foreign, malformed)
    what the metric counts it as."""

    def __init__(self, reason: str, kind: str = "malformed") -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass
class UploadResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


def _check(upload: api_pb2.DeviceDecision, now_ms: int, known: Container[str]) -> None:
    """Rejected(reason) unless `upload` is a well-formed, recent decision over stickers we know."""
    if not upload.device_decision_id or len(upload.device_decision_id) > MAX_ID_LENGTH:
        raise Rejected(f"`device_decision_id` must be 1 to {MAX_ID_LENGTH} characters")
    age = now_ms - upload.served_at_ms
    if upload.served_at_ms <= 0 or age > MAX_DEVICE_DECISION_AGE_MS:
        raise Rejected(
            f"too old: served {age // 3_600_000} h ago, at most {MAX_DEVICE_DECISION_AGE_MS // 3_600_000} h", "too_old"
        )
    if age < -MAX_DEVICE_CLOCK_AHEAD_MS:
        raise Rejected(f"`served_at_ms` is {-age // 1000} s ahead of the server's clock")
    if not upload.model_version.endswith("-device") or len(upload.model_version) > MAX_ID_LENGTH:
        raise Rejected(f"foreign: model {upload.model_version[:64]!r} is not a device bundle", "foreign")
    if upload.policy != EpsilonGreedy.name or not 0.0 <= upload.epsilon <= 1.0:
        raise Rejected(f"`policy` must be {EpsilonGreedy.name!r} with `epsilon` in [0, 1]")
    if len(upload.message) > MAX_MESSAGE_CHARS:
        raise Rejected(f"`message` is longer than {MAX_MESSAGE_CHARS} characters")
    ids, scores = list(upload.candidate_ids), np.asarray(upload.candidate_scores, dtype=np.float64)
    if not 1 <= len(ids) <= MAX_DEVICE_CANDIDATES or len(scores) != len(ids) or len(set(ids)) != len(ids):
        raise Rejected(f"`candidate_ids` must be 1 to {MAX_DEVICE_CANDIDATES} distinct ids, one score each")
    if not np.isfinite(scores).all():
        raise Rejected("`candidate_scores` must be finite")
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise Rejected(
            f"foreign: {len(unknown)} candidate(s) unknown to this server, e.g. {unknown[0][:64]!r}", "foreign"
        )
    shown = [s.sticker_id for s in upload.suggestions]
    if not 1 <= len(shown) <= min(MAX_STICKERS, len(ids)) or len(set(shown)) != len(shown):
        raise Rejected("`suggestions` must be 1 to k distinct stickers")
    position = {sid: i for i, sid in enumerate(ids)}
    if any(s not in position for s in shown):
        raise Rejected("a suggestion is not among `candidate_ids`")
    marginals = epsilon_greedy.marginals(scores, len(shown), upload.epsilon)
    for slot, suggestion in enumerate(upload.suggestions):
        expected = marginals[position[suggestion.sticker_id], slot]
        if not (math.isfinite(suggestion.propensity) and abs(suggestion.propensity - expected) <= PROPENSITY_TOLERANCE):
            raise Rejected(
                f"suggestion {slot}: propensity {suggestion.propensity!r} is not its exploration's ({expected!r})"
            )
    for send in upload.sends:
        if send.sticker_id not in shown:
            raise Rejected(f"a send of {send.sticker_id[:64]!r}, which the list did not show")
        if send.sent_at_ms < upload.served_at_ms or send.sent_at_ms - now_ms > MAX_DEVICE_CLOCK_AHEAD_MS:
            raise Rejected("a send's `sent_at_ms` is before the list was shown or in the future")


class DeviceDecisionIntake:
    def __init__(
        self,
        publish: Callable[[str, bytes, bytes | None, dict[str, bytes] | None], bool],
        decisions_topic: str,
        outcomes_topic: str,
        claim: Callable[[str, str], bool],
        known_stickers: Callable[[], Container[str]],
        decision_ids: DecisionIds | None = None,
        log_policy: LogPolicy | None = None,
        reward_window_ms: int = 30_000,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._publish = publish
        self._decisions_topic = decisions_topic
        self._outcomes_topic = outcomes_topic
        #: (client id, device decision id) → True the first time (Redis SET NX)
        self._claim = claim
        self._known = known_stickers
        self._decision_ids = decision_ids or DecisionIds()
        self._log_policy = log_policy or LogPolicy()
        self._reward_window_ms = reward_window_ms
        self._clock_ms = clock_ms
        #: uploaded decisions by fate: accepted, duplicate, rejected_<kind> (`tastemaker_device_decisions`)
        self.counts: Counter[str] = Counter()
        self._rejections = RateLimitedLog(log)

    def report(self, request: api_pb2.ReportDeviceDecisionsRequest) -> UploadResult:
        check_id("user_id", request.user_id)
        if len(request.decisions) > MAX_DEVICE_DECISIONS:
            raise InvalidArgument("decisions", f"holds {len(request.decisions)}, at most {MAX_DEVICE_DECISIONS} a call")
        client, now_ms, known = current_client.get(), self._clock_ms(), self._known()
        result = UploadResult()
        seen: set[str] = set()
        for index, upload in enumerate(request.decisions):
            try:
                _check(upload, now_ms, known)
            except Rejected as exc:
                result.rejected.append((index, upload.device_decision_id[:MAX_ID_LENGTH], str(exc)))
                self.counts[f"rejected_{exc.kind}"] += 1
                self._rejections.warning("device decision %d from client %r rejected: %s", index, client, exc)
                continue
            if upload.device_decision_id in seen or not self._claim(client, upload.device_decision_id):
                result.duplicates += 1
                self.counts["duplicate"] += 1
                continue
            seen.add(upload.device_decision_id)
            self._publish_one(request.user_id, upload, client, now_ms)
            result.accepted += 1
            self.counts["accepted"] += 1
        return result

    def _publish_one(self, user_id: str, upload: api_pb2.DeviceDecision, client: str, now_ms: int) -> None:
        # the window runs from the upload: the sends that come with it (and any reported later) join
        window = now_ms - upload.served_at_ms + self._reward_window_ms
        decision_id = self._decision_ids.mint(upload.served_at_ms, window, client)
        ids, scores = list(upload.candidate_ids), list(upload.candidate_scores)
        context = {"language": upload.language, "message": normalise(upload.message)[:200],
                   "device_decision_id": upload.device_decision_id, "rerank": "static"}  # fmt: skip
        if upload.partial:
            context["partial"] = "1"
        decision = records_pb2.DecisionLog(
            decision_id=decision_id,
            user_id=self._log_policy.user(user_id),
            surface=STICKERS_DEVICE,
            served_at_ms=upload.served_at_ms,
            policy=upload.policy,
            model_version=upload.model_version,
            exploration=exploration_log(EpsilonGreedy(upload.epsilon), len(ids), len(upload.suggestions)),
            context=self._log_policy.context(context),
            feature_names=sticker_names(ids),
            feature_values=scores + [0.0] * len(ids),  # the device knows no per-user sends
            ranking_propensity=upload.ranking_propensity,
            reward_window_ms=window,
            client_id=client,
        )
        row = decision.shown.add(shelf_id="stickers", position=0, propensity=1.0)
        row.cards_ranking_propensity = upload.ranking_propensity
        row.card_candidates.item_ids.extend(ids)
        row.card_candidates.scores.extend(scores)
        for position, suggestion in enumerate(upload.suggestions):
            row.cards.add(
                card_id=suggestion.sticker_id, position=position, score=suggestion.score,
                propensity=suggestion.propensity,
            )  # fmt: skip
        self._publish(self._decisions_topic, decision.SerializeToString(), decision_id.encode(), PROTOBUF_HEADERS)
        for send in upload.sends:
            outcome = records_pb2.Outcome(
                outcome_id=outcome_id(decision_id, send.sticker_id, "send"),
                decision_id=decision_id,
                item_id=send.sticker_id,
                reward=1.0,
                event_type="send",
                reported_at_ms=now_ms,
                client_id=client,
            )
            self._publish(self._outcomes_topic, outcome.SerializeToString(), decision_id.encode(), PROTOBUF_HEADERS)


def report_device_decisions_response(result: UploadResult) -> api_pb2.ReportDeviceDecisionsResponse:
    return api_pb2.ReportDeviceDecisionsResponse(
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=[
            api_pb2.RejectedDeviceDecision(index=i, device_decision_id=d, reason=r) for i, d, r in result.rejected
        ],
    )
