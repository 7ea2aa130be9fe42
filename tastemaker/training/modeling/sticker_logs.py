"""Training pairs for the sticker encoder from its own logs: every sticker a user sent after a
`SuggestStickers` decision, paired with the message the decision logged, weighted by the inverse
of the propensity with which the decision showed that sticker.

Why the weight: a sticker the logging policy showed at the top almost always collects sends
whatever its fit, one it rarely showed collects few however well it fits. Weighting each send by
min(1/μ, clip), μ the logged P(sticker at the position it was shown), makes the pairs estimate
what users would send if every candidate were shown (Joachims, Swaminathan & Schnabel, "Unbiased
Learning-to-Rank with Biased Feedback", WSDM 2017). The weights are scaled to mean 1, so the
logged pairs weigh as much in all as their number, beside the catalog's own pairs (weight 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tastemaker.records.surfaces import STICKER_SURFACES
from tastemaker.v1 import records_pb2


@dataclass(frozen=True)
class LoggedPair:
    message: str
    sticker_id: str
    weight: float


def logged_pairs(decisions: Sequence[records_pb2.RewardedDecision], clip: float | None = 10.0) -> list[LoggedPair]:
    """One pair per sent sticker that the decision showed; sends of a sticker it did not show (the
    user picked from elsewhere) carry no propensity and are left out."""
    if clip is not None and not clip >= 1:
        raise ValueError(f"`clip` must be at least 1, got {clip}")
    raw: list[tuple[str, str, float]] = []
    for rewarded in decisions:
        decision = rewarded.decision
        message = decision.context.get("message", "")
        if decision.surface not in STICKER_SURFACES or not message:
            continue
        shown = {c.card_id: c.propensity for s in decision.shown for c in s.cards}
        for outcome in rewarded.outcomes:
            propensity = shown.get(outcome.item_id, 0.0)
            if outcome.reward > 0 and propensity > 0:
                inverse = 1.0 / propensity
                raw.append((message, outcome.item_id, inverse if clip is None else min(inverse, clip)))
    if not raw:
        return []
    mean = sum(w for _, _, w in raw) / len(raw)
    return [LoggedPair(m, s, w / mean) for m, s, w in raw]
