"""Off-policy evaluation of sticker suggestions: sends per suggestion list, from the logs of
`SuggestStickers` and the sends reported against them.

A decision shows k stickers out of its logged candidates (the ANN's top 50 with their scores and
the user's sends of each); each shown position is a slot with the logged P(sticker at position)
and the reward 1 when the user sent that sticker. Target policies re-rank the same logged
candidates (the estimate says nothing about stickers the logging model never retrieved):

- `logging`: the logged propensities themselves (its estimate should cover the on-policy rate);
- `greedy`: the logged scores, best first (the logging policy without its exploration);
- `uniform-random`: any k of the candidates in any order;
- `encoder:<bundle dir>`: a sticker bundle's similarity between the logged message and each
  candidate, plus the same engagement term as serving, best first (the retrain gate's policies).

Positions are treated independently (position-based model), as the home page's cell estimates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.bandits.sticker_rerank import RERANK_DIM, LearnedReRank, static_scores
from tastemaker.bandits.strategies import Candidates, EpsilonGreedy, LinearState
from tastemaker.features.learner import sticker_rows_of
from tastemaker.records.activation import activated_only
from tastemaker.records.surfaces import STICKER_SURFACES
from tastemaker.training.evaluation.ope import (
    IPW,
    SNIPW,
    OffPolicyEstimator,
    SlotData,
    estimate_dict,
    weight_diagnostics,
)
from tastemaker.v1 import records_pb2

#: the server's suggestion lists and those devices showed offline (ReportDeviceDecisions): one
#: population to estimate on, each decision counted once; the report gives each surface's counts
SURFACES = STICKER_SURFACES


def sticker_decisions(decisions: Sequence[records_pb2.RewardedDecision]) -> list[records_pb2.RewardedDecision]:
    """The decisions of the sticker surface that can be evaluated (one shown row with candidates)
    and count (`records.activation.counted`)."""
    return [
        d
        for d in activated_only(decisions)
        if d.decision.surface in SURFACES
        and len(d.decision.shown) == 1
        and d.decision.shown[0].card_candidates.item_ids
    ]


def _width(decisions: Sequence[records_pb2.RewardedDecision]) -> int:
    return max((len(d.decision.shown[0].cards) for d in decisions), default=0)


def slot_data(decisions: Sequence[records_pb2.RewardedDecision]) -> SlotData:
    """One row per decision, one slot per position: reward 1 for a sent sticker, its logged
    P(sticker at position)."""
    k = _width(decisions)
    rewards = np.zeros((len(decisions), k))
    propensity = np.ones((len(decisions), k))
    mask = np.zeros((len(decisions), k), dtype=bool)
    for i, rewarded in enumerate(decisions):
        position = {}
        for card in rewarded.decision.shown[0].cards:
            position[card.card_id] = card.position
            propensity[i, card.position] = card.propensity
            mask[i, card.position] = True
        for outcome in rewarded.outcomes:
            if outcome.item_id in position and outcome.reward > 0:
                rewards[i, position[outcome.item_id]] = 1.0
    return SlotData(rewards, propensity, mask)


#: scores of a decision's logged candidates under a target policy (None: the logging policy)
Scorer = Callable[[records_pb2.DecisionLog], np.ndarray]


@dataclass(frozen=True)
class StickerPolicy:
    name: str
    scorer: Scorer | None  # None: the logging policy's own propensities
    epsilon: float = 0.0
    uniform: bool = False


def logged_scores(decision: records_pb2.DecisionLog) -> np.ndarray:
    return np.asarray(decision.shown[0].card_candidates.scores, dtype=np.float64)


def logged_sends(decision: records_pb2.DecisionLog) -> np.ndarray:
    """The user's sends of each candidate at serving time (the second half of the logged values)."""
    n = len(decision.shown[0].card_candidates.item_ids)
    values = np.asarray(decision.feature_values, dtype=np.float64)
    return values[n : 2 * n] if len(values) >= 2 * n else np.zeros(n)


def encoder_scorer(bundle: Path) -> Scorer:
    """Scores of a sticker bundle: its model score (similarity, or the blend with its head) of the
    logged message and each candidate (candidates it does not know are embedded from their phrases,
    as serving does), plus the engagement term. Embeddings are computed once per sticker."""
    from tastemaker.stickers.bundle import load_bundle
    from tastemaker.stickers.scoring import model_scores

    loaded = load_bundle(bundle)
    cache: dict[str, np.ndarray] = {}

    def vectors(ids: Sequence[str]) -> np.ndarray:
        missing = [i for i in ids if i not in cache and i in loaded.catalog]
        if missing:
            for sticker_id, vector in zip(
                missing, loaded.encoder.stickers([loaded.catalog[i] for i in missing]), strict=True
            ):
                cache[sticker_id] = vector
        dim = loaded.encoder.sticker_w.shape[1]
        return np.stack([cache.get(i, np.zeros(dim, dtype=np.float32)) for i in ids])

    def score(decision: records_pb2.DecisionLog) -> np.ndarray:
        ids = list(decision.shown[0].card_candidates.item_ids)
        context = decision.context
        _, score = model_scores(
            loaded, tuple(ids), vectors(ids), context.get("message", ""), context.get("previous_message", "")
        )
        return static_scores(score, logged_sends(decision))

    return score


def resolve(policy: str) -> StickerPolicy:
    if policy == "logging":
        return StickerPolicy("logging", None)
    if policy == "greedy":
        return StickerPolicy("greedy", logged_scores)
    if policy == "uniform-random":
        return StickerPolicy("uniform-random", logged_scores, uniform=True)
    if policy.startswith("encoder:"):
        return StickerPolicy(policy, encoder_scorer(Path(policy.removeprefix("encoder:"))))
    raise ValueError(f"unknown sticker policy {policy!r}: logging, greedy, uniform-random or encoder:<bundle dir>")


def target_propensity(decisions: Sequence[records_pb2.RewardedDecision], policy: StickerPolicy) -> np.ndarray:
    """π(logged sticker at its logged position) per slot."""
    k = _width(decisions)
    out = np.zeros((len(decisions), k))
    for i, rewarded in enumerate(decisions):
        decision = rewarded.decision
        row = decision.shown[0]
        if policy.scorer is None:
            for card in row.cards:
                out[i, card.position] = card.propensity
            continue
        ids = tuple(row.card_candidates.item_ids)
        shown = len(row.cards)
        if policy.uniform:
            out[i, [c.position for c in row.cards]] = 1.0 / len(ids)
            continue
        marginals = EpsilonGreedy(policy.epsilon).marginals(Candidates(ids, policy.scorer(decision)), shown)
        index = {sticker_id: c for c, sticker_id in enumerate(ids)}
        for card in row.cards:
            if card.card_id in index:
                out[i, card.position] = marginals[index[card.card_id], card.position]
    return out


def evaluate_stickers(
    decisions: Sequence[records_pb2.RewardedDecision],
    policies: Sequence[str | StickerPolicy] = ("logging", "greedy", "uniform-random"),
    estimators: Sequence[OffPolicyEstimator] = (IPW(), SNIPW()),
) -> dict[str, Any]:
    """Sends per suggestion list: the on-policy rate and each policy's estimates with 95% intervals."""
    stickers = sticker_decisions(decisions)
    if not stickers:
        raise ValueError("no sticker decisions to evaluate")
    data = slot_data(stickers)
    surfaces = np.array([d.decision.surface for d in stickers])
    report: dict[str, Any] = {
        "n_decisions": len(stickers),
        "sends": int(data.rewards.sum()),
        "by_surface": {
            surface: {"decisions": int(mine.sum()), "sends": int(data.rewards[mine].sum())}
            for surface in SURFACES
            if (mine := surfaces == surface).any()
        },
        "on_policy_sends_per_decision": float(data.rewards.sum(axis=1).mean()),
        "policies": {},
    }
    for given in policies:
        policy = given if isinstance(given, StickerPolicy) else resolve(given)
        target = target_propensity(stickers, policy)
        report["policies"][policy.name] = {
            "estimates": {e.name: estimate_dict(e, data, target) for e in estimators},
            **weight_diagnostics(data, target).as_dict(),
        }
    if by_arm := rerank_by_minute(stickers):
        report["rerank"] = by_arm
    if judged := evaluate_reranks(stickers):
        report["rerank_ope"] = judged
    return report


def _scores_and_sends(decision: records_pb2.DecisionLog) -> tuple[np.ndarray, np.ndarray]:
    """The logged model score and sends of each candidate."""
    n = len(decision.shown[0].card_candidates.item_ids)
    values = np.asarray(decision.feature_values, dtype=np.float64)
    return (values[:n], logged_sends(decision)) if len(values) >= n else (np.zeros(n), np.zeros(n))


def evaluate_reranks(
    decisions: Sequence[records_pb2.RewardedDecision], fit_share: float = 0.5, min_decisions: int = 50
) -> dict[str, Any]:
    """The re-rank's parameters judged off-policy: the learned re-rank fitted as the learner fits it
    (no forgetting) on the earlier `fit_share` of the sticker decisions, and the static re-rank, each
    ranking the later decisions' logged candidates greedily from the model scores and sends those
    decisions logged; sends per list by SNIPW with a 95% interval, on the later part only (never the
    part it was fitted on). {} with fewer than `min_decisions` on either side."""
    stickers = sorted(sticker_decisions(decisions), key=lambda r: r.decision.served_at_ms)
    cut = int(len(stickers) * fit_share)
    fit, held = stickers[:cut], stickers[cut:]
    if min(len(fit), len(held)) < min_decisions:
        return {}
    state = LinearState(RERANK_DIM)
    for rewarded in fit:
        if rows := sticker_rows_of(rewarded):
            state.update(rows.x, rows.reward, rows.items)
    learned = LearnedReRank(state, min_rows=0)

    def learned_scores(decision: records_pb2.DecisionLog) -> np.ndarray:
        return learned.scores(list(decision.shown[0].card_candidates.item_ids), *_scores_and_sends(decision))

    def static(decision: records_pb2.DecisionLog) -> np.ndarray:
        return static_scores(*_scores_and_sends(decision))

    data = slot_data(held)
    estimator = SNIPW()
    policies = (StickerPolicy("static re-rank", static), StickerPolicy("learned re-rank", learned_scores))
    return {
        "fitted_on": len(fit),
        "evaluated_on": len(held),
        "theta": [float(t) for t in state.theta()],
        "on_policy": float(data.rewards.sum(axis=1).mean()),
        "policies": {p.name: estimate_dict(estimator, data, target_propensity(held, p)) for p in policies},
    }


def rerank_by_minute(stickers: Sequence[records_pb2.RewardedDecision]) -> dict[str, dict[str, float]]:
    """Sends per suggestion list of each re-rank (the decision's context["rerank"]) in the first
    and in the last whole minute of the logs, and over all; {} when the decisions name none."""
    arms = [r.decision.context.get("rerank", "") for r in stickers]
    if not any(arms):
        return {}
    served = np.array([r.decision.served_at_ms for r in stickers], dtype=np.int64)
    minute = (served - served.min()) // 60_000
    last = int(minute.max()) - 1 if minute.max() >= 1 and (served.max() - served.min()) % 60_000 else int(minute.max())
    sends = np.array([sum(o.reward for o in r.outcomes) for r in stickers], dtype=np.float64)
    out: dict[str, dict[str, float]] = {}
    for arm in sorted({a for a in arms if a}):
        mine = np.array([a == arm for a in arms])
        first, final = mine & (minute == 0), mine & (minute == last)
        out[arm] = {
            "decisions": int(mine.sum()),
            "sends_per_list": float(sends[mine].mean()),
            "first_minute": float(sends[first].mean()) if first.any() else float("nan"),
            "last_minute": float(sends[final].mean()) if final.any() else float("nan"),
            "minutes": float(last + 1),
        }
    return out


def format_sticker_report(report: dict[str, Any]) -> str:
    lines = [
        f"sticker decisions: {report['n_decisions']}   sends: {report['sends']}   "
        f"on-policy sends per suggestion list: {report['on_policy_sends_per_decision']:.4f}",
        "  by surface: "
        + ", ".join(
            f"{surface} {entry['decisions']} lists, {entry['sends']} sends"
            for surface, entry in report.get("by_surface", {}).items()
        ),
    ]
    for name, entry in report["policies"].items():
        for estimator, e in entry["estimates"].items():
            shown = "—  no support" if e["value"] is None else f"{e['value']:.4f} [{e['lower']:.4f}, {e['upper']:.4f}]"
            lines.append(f"  {name:<22} {estimator:<6} {shown}   ESS {e['effective_sample_size']:.0f}")
    if judged := report.get("rerank_ope"):
        theta = ", ".join(f"{t:.3f}" for t in judged["theta"])
        lines.append(
            f"  re-ranks off-policy (SNIPW, fitted on the first {judged['fitted_on']} lists, judged on the "
            f"later {judged['evaluated_on']}; θ̂ = [{theta}], on-policy {judged['on_policy']:.3f}):"
        )
        for name, e in judged["policies"].items():
            shown = "—  no support" if e["value"] is None else f"{e['value']:.4f} [{e['lower']:.4f}, {e['upper']:.4f}]"
            lines.append(f"    {name:<18} {shown}   ESS {e['effective_sample_size']:.0f}")
    for arm, entry in report.get("rerank", {}).items():
        lines.append(
            f"  re-rank {arm:<8} {entry['decisions']:>6} lists, sends per list: first minute "
            f"{entry['first_minute']:.3f}, minute {entry['minutes']:.0f} {entry['last_minute']:.3f}, "
            f"all {entry['sends_per_list']:.3f}"
        )
    return "\n".join(lines)
