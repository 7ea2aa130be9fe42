"""Off-policy evaluation of home-page policies from rewarded decisions.

Every shown shelf and every shown card is a slot (a cell of the home grid) with its own
reward and its propensity of being in that cell; the estimators assume rewards depend only on
what is in each cell (position-based model). Target policies are re-run on the logged
scores (or a saved model's scores of the logged features), so their propensities are exact:
see `home_policies.py` for the policies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tastemaker.records.activation import counted
from tastemaker.records.logged_page import LoggedPage, pages_of
from tastemaker.training.evaluation.home_policies import (
    DEFAULT_POLICIES,
    HomePolicy,
    logging_strategy,
    resolve,
)
from tastemaker.training.evaluation.home_reward_model import CellRewardModel, cascade_q, q_arrays
from tastemaker.training.evaluation.ope import (
    IPW,
    SNIPW,
    CascadeDR,
    OffPolicyEstimator,
    SlotData,
    estimate_dict,
    weight_diagnostics,
    weight_histogram,
)
from tastemaker.training.progress import progress
from tastemaker.v1 import records_pb2

__all__ = ["evaluate", "format_report", "slot_data", "target_propensity"]


def _policy(policy: str | HomePolicy) -> HomePolicy:
    return policy if isinstance(policy, HomePolicy) else resolve(policy)


#: why a report has no cascade estimates (the note in both engines' reports)
CASCADE_NEEDS_RERUN = (
    "cascade estimates need the logging policy's page-prefix probabilities; the logs of "
    "LinUCB or Thompson sampling carry only each item's and the whole page's"
)


Logged = records_pb2.RewardedDecision | LoggedPage


def page_grid(decisions: Sequence[Logged]) -> tuple[int, int]:
    shown = [d.decision.shown for d in decisions]
    rows = max((len(s) for s in shown), default=0)
    cols = 1 + max((len(shelf.cards) for page in shown for shelf in page), default=0)
    return rows, cols


def slot_data(decisions: Sequence[Logged]) -> SlotData:
    """Slots are (row, column) cells flattened: column 0 is the shelf itself, column 1+k its k-th card.

    A card's propensity is its shelf's times its own (conditional on the shelf)."""
    pages = pages_of(decisions)
    rows, cols = page_grid(pages)
    rewards = np.zeros((len(pages), rows, cols))
    propensity = np.ones((len(pages), rows, cols))
    mask = np.zeros((len(pages), rows, cols), dtype=bool)
    for i, page in enumerate(pages):
        for (row, col), _, p in page.shown_cells():
            propensity[i, row, col] = p
            mask[i, row, col] = True
        cells = page.cells
        for outcome in page.rewarded.outcomes:
            cell = cells.get(outcome.item_id)
            if cell is not None:
                rewards[(i, *cell)] += outcome.reward
    n = len(pages)
    return SlotData(
        rewards=rewards.reshape(n, -1), logged_propensity=propensity.reshape(n, -1), mask=mask.reshape(n, -1)
    )


def target_propensity(decisions: Sequence[Logged], policy: str | HomePolicy, label: str = "") -> np.ndarray:
    """π(item at its logged cell) for each shown cell, re-running `policy` on the decision."""
    policy = _policy(policy)
    pages = pages_of(decisions)
    rows, cols = page_grid(pages)
    out = np.zeros((len(pages), rows, cols))
    for i, page in enumerate(progress(pages, label or f"{policy.name}: cell propensities")):
        decision = page.decision
        strategy = policy.strategy_for(decision)
        if strategy is None:  # the logging policy, not re-runnable: its logged propensities
            for (row, col), _, p in page.shown_cells():
                out[i, row, col] = p
            continue
        slot_of_row = page.slot_of_row
        shelf_marginals = strategy.marginals(policy.shelf_candidates(page), len(slot_of_row))
        for r, shelf in enumerate(decision.shown):
            if shelf.position in page.pinned:
                p_shelf = 1.0
            else:
                p_shelf = shelf_marginals[page.shelf_index[shelf.shelf_id], slot_of_row[shelf.position]]
            explained = policy.explanation_candidates(page, r)
            if explained is not None:  # the (shelf, explanation) pair
                variants, shown = explained
                p_shelf *= strategy.marginals(variants, 1)[shown, 0]
            out[i, shelf.position, 0] = p_shelf
            card_marginals = strategy.marginals(policy.card_candidates(page, r), len(shelf.cards))
            card_index = page.card_index[r]
            for card in shelf.cards:
                out[i, shelf.position, 1 + card.position] = (
                    p_shelf * card_marginals[card_index[card.card_id], card.position]
                )
    return out.reshape(len(pages), -1)


def prefix_probabilities(decision: records_pb2.DecisionLog | LoggedPage, policy: str | HomePolicy) -> np.ndarray:
    """P(the page's first k rows exactly as shown, shelves and their cards), k = 1..rows.

    The last entry is the whole page's probability."""
    policy = _policy(policy)
    page = decision if isinstance(decision, LoggedPage) else LoggedPage.of_decision(decision)
    logged = page.decision
    strategy = policy.strategy_for(logged)
    if strategy is None:  # logged: only the whole page's probability is known
        out = np.full(len(logged.shown), np.nan)
        if len(out):
            out[-1] = logged.ranking_propensity * float(
                np.prod([s.cards_ranking_propensity * (s.explanation_propensity if s.explanation_id else 1.0)
                         for s in logged.shown])
            )  # fmt: skip
        return out
    slot_of_row = page.slot_of_row
    shelf_candidates = policy.shelf_candidates(page)
    order = np.array([page.shelf_index[s.shelf_id] for s in logged.shown if s.position in slot_of_row], dtype=int)
    out = np.empty(len(logged.shown))
    cards_so_far = 1.0
    free_so_far = 0
    for k, shelf in enumerate(logged.shown):
        card_index = page.card_index[k]
        card_order = np.array([card_index[c.card_id] for c in shelf.cards], dtype=int)
        cards_so_far *= strategy.ranking_probability(policy.card_candidates(page, k), card_order)
        explained = policy.explanation_candidates(page, k)
        if explained is not None:
            cards_so_far *= strategy.ranking_probability(explained[0], np.array([explained[1]]))
        free_so_far += shelf.position in slot_of_row
        shelves = strategy.ranking_probability(shelf_candidates, order[:free_so_far]) if free_so_far else 1.0
        out[k] = shelves * cards_so_far
    return out


def slate_data(decisions: Sequence[Logged], policy: str | HomePolicy, cascade: bool) -> tuple[SlotData, np.ndarray]:
    """Slot data and target propensities for the whole-page estimators.

    cascade=False: one slot per decision holding the page's total reward, weighted by
    π(page)/π₀(page) — the standard slate IPS (unbiased with any reward structure).
    cascade=True: one slot per row k holding row k's reward, weighted by the probability ratio
    of the first k rows — reward-interaction / cascade IPS (McInerney et al., KDD 2020), unbiased
    when a row's reward depends only on the rows above it and itself."""
    pages = pages_of(decisions)
    rows = max((len(page.decision.shown) for page in pages), default=0)
    width = rows if cascade else 1
    rewards = np.zeros((len(pages), width))
    logged = np.ones((len(pages), width))
    target = np.zeros((len(pages), width))
    mask = np.zeros((len(pages), width), dtype=bool)
    logging, target_policy = resolve("logging"), _policy(policy)
    label = f"{target_policy.name}: {'cascade' if cascade else 'slate'} propensities"
    for i, page in enumerate(progress(pages, label)):
        if not page.decision.shown:
            continue
        n_rows = len(page.decision.shown)
        logged_prefix = prefix_probabilities(page, logging)
        target_prefix = prefix_probabilities(page, target_policy)
        row_rewards = page.row_rewards(n_rows)
        if cascade:
            rewards[i, :n_rows], logged[i, :n_rows], target[i, :n_rows] = row_rewards, logged_prefix, target_prefix
            mask[i, :n_rows] = True
        else:
            rewards[i, 0], logged[i, 0], target[i, 0] = row_rewards.sum(), logged_prefix[-1], target_prefix[-1]
            mask[i, 0] = True
    return SlotData(rewards, logged, mask), target


def _slots(data: SlotData, target: np.ndarray, start: int, width: int) -> tuple[SlotData, np.ndarray]:
    """Slots start … start + width − 1 of every decision."""
    part = slice(start, start + width)
    q = None if data.q_logged is None else data.q_logged[:, part]
    return SlotData(data.rewards[:, part], data.logged_propensity[:, part], data.mask[:, part], q), target[:, part]


def _per_row(data: SlotData, target: np.ndarray, rows: int, cols: int, bootstrap: int) -> list[dict[str, Any]]:
    """Per page row: the per-cell IPS of the row's cells (a shelf and its cards) with its interval."""
    return [
        {"row": r, "ipw": estimate_dict(IPW(), *_slots(data, target, r * cols, cols), bootstrap=bootstrap)}
        for r in range(rows)
    ]


def _per_slot_ipw(data: SlotData, target: np.ndarray) -> list[float]:
    """Each slot's IPW value (mean over decisions of w·r in that slot)."""
    weights = np.where(data.mask, target / data.logged_propensity, 0.0)
    return (weights * np.where(data.mask, data.rewards, 0.0)).mean(axis=0).tolist()


def _over_time(
    decisions: Sequence[Logged], data: SlotData, target: np.ndarray, buckets: int = 10
) -> list[dict[str, Any]]:
    """IPW estimates over consecutive windows of served time (equal numbers of decisions)."""
    served = np.array([d.decision.served_at_ms for d in decisions])
    order = np.argsort(served, kind="stable")
    out = []
    for rows in np.array_split(order, min(buckets, len(order))):
        if len(rows) < 2:
            continue
        estimate = IPW().estimate(data.subset(rows), target[rows])
        out.append({"from_ms": float(served[rows].min()), "to_ms": float(served[rows].max()), **estimate.as_dict()})
    return out


def evaluate(
    decisions: Sequence[records_pb2.RewardedDecision],
    policies: Sequence[str | HomePolicy] = DEFAULT_POLICIES,
    estimators: Sequence[OffPolicyEstimator] = (IPW(), SNIPW()),
    slates: bool = True,
    bootstrap: int = 0,
) -> dict[str, Any]:
    """Estimates per policy and estimator, the on-policy mean reward and diagnostics.

    `<estimator>` treats every cell independently (position-based); with `slates`, also
    `slate-<estimator>` (whole page) and `cascade-<estimator>` (page prefixes)."""
    if not decisions:
        raise ValueError("no rewarded decisions to evaluate")
    deferred = [d for d in decisions if d.decision.surface == "home" and not counted(d)]
    # each home decision read once (written out, rows compacted, its indexes built): every stage uses the pages
    home = [LoggedPage.of(d) for d in decisions if d.decision.surface == "home" and counted(d)]
    if not home:
        raise ValueError(
            "no home decisions count: every one was deferred and never activated"
            if deferred
            else "no home decisions to evaluate"
        )
    data = slot_data(home)
    report: dict[str, Any] = {
        "n_decisions": len(home),
        # deferred decisions that were never activated: kept in the log, left out of the estimates
        "n_unactivated": len(deferred),
        "on_policy_mean_reward": float(np.mean([page.rewarded.reward for page in home])),
        "defaulted_share": float(np.mean([page.rewarded.defaulted for page in home])),
        "policies": {},
    }
    rerunnable = all(logging_strategy(d.decision) is not None for d in home)
    if not rerunnable:
        report["notes"] = [CASCADE_NEEDS_RERUN]
    model = CellRewardModel.fit(home) if any(e.needs_reward_model for e in estimators) else None
    weighting = [e for e in estimators if not e.needs_reward_model]
    rows, cols = page_grid(home)
    for given in policies:
        policy = given if isinstance(given, HomePolicy) else resolve(given)
        name = policy.name
        target = target_propensity(home, policy)
        q_target = None
        if model is not None:
            q_logged, q_target = q_arrays(home, model, policy, rows, cols)
            data = SlotData(data.rewards, data.logged_propensity, data.mask, q_logged)
        estimates = {e.name: estimate_dict(e, data, target, q_target, bootstrap) for e in estimators}
        per_row = _per_row(data, target, rows, cols, bootstrap)
        if slates:
            for prefix, cascade in (("slate", False), ("cascade", True))[: 2 if rerunnable else 1]:
                page_data, page_target = slate_data(home, policy, cascade)
                estimates.update(
                    {
                        f"{prefix}-{e.name}": estimate_dict(e, page_data, page_target, bootstrap=bootstrap)
                        for e in weighting
                    }
                )
                if not cascade:
                    continue
                for r, entry in enumerate(per_row):  # row r's term of the page-prefix IPS
                    entry["cascade-ipw"] = estimate_dict(
                        IPW(), *_slots(page_data, page_target, r, 1), bootstrap=bootstrap
                    )
                modelled = cascade_q(home, model, policy, page_data.rewards.shape[1]) if model is not None else None
                if modelled is not None:
                    page_data = SlotData(page_data.rewards, page_data.logged_propensity, page_data.mask, modelled[0])
                    estimates["cascade-dr"] = estimate_dict(CascadeDR(), page_data, page_target, modelled[1], bootstrap)
        report["policies"][name] = {
            "estimates": estimates,
            **weight_diagnostics(data, target).as_dict(),
            "unsupported_mass": unsupported_shelf_mass(home, policy),
            "weight_histogram": weight_histogram(data, target),
            "per_row_ipw": np.asarray(_per_slot_ipw(data, target)).reshape(rows, cols).sum(axis=1).tolist(),
            # each row's expected reward (its shelf and cards) with its interval: the per-cell IPS
            # of the row's cells, and (re-runnable logs) the row's term of the page-prefix IPS
            "per_row": per_row,
            "over_time_ipw": _over_time(home, data, target),
        }
    logging_target = target_propensity(home, "logging")
    report["max_logged_propensity_error"] = (
        float(np.abs(logging_target - data.logged_propensity)[data.mask].max()) if data.mask.any() else 0.0
    )
    return report


def unsupported_shelf_mass(decisions: Sequence[Logged], policy: HomePolicy) -> float | None:
    """Share of the target's shelf-placement mass where the logging policy never goes (ε = 0 logs,
    or a target scoring other candidates): IPW-type estimates say nothing about that part.
    None when the logging policy cannot be re-run (LinUCB, Thompson logs)."""
    logging = resolve("logging")
    total = 0.0
    for page in pages_of(decisions):
        decision = page.decision
        k = len(page.slot_of_row)
        target_strategy, logging_strategy_ = policy.strategy_for(decision), logging.strategy_for(decision)
        if not k or target_strategy is None:
            continue
        if logging_strategy_ is None:
            return None
        target = target_strategy.marginals(policy.shelf_candidates(page), k)
        logged = logging_strategy_.marginals(logging.shelf_candidates(page), k)
        total += float(target[logged <= 0].sum()) / k
    return total / max(len(decisions), 1)


def format_report(report: dict[str, Any]) -> str:
    head = f"decisions: {report['n_decisions']}   on-policy mean reward: {report['on_policy_mean_reward']:.4f}"
    if "defaulted_share" in report:
        head += f"   defaulted: {report['defaulted_share']:.1%}"
    lines = [head]
    if report.get("n_unactivated"):
        lines.append(
            f"deferred decisions never activated (in the log, left out of every estimate): {report['n_unactivated']}"
        )
    if "max_logged_propensity_error" in report:
        lines.append(f"largest |logged - recomputed| logging propensity: {report['max_logged_propensity_error']:.2e}")
    width = max([16] + [len(policy) + 2 for policy in report["policies"]])
    lines.append(f"{'policy':<{width}}{'estimator':<15}{'estimate':>10}  {'95% interval':<22}{'mean w':>8}{'ESS':>9}")
    warnings = []
    for policy, body in report["policies"].items():
        for name, est in body["estimates"].items():
            # each estimator's own weights (a slate's differ from a cell's); older reports: the policy's
            mean_weight = est.get("mean_weight", body["mean_weight"])
            ess = est.get("effective_sample_size", body["effective_sample_size"])
            if est["value"] is None:
                value, interval = f"{'—':>10}", "no support"
            else:
                value, interval = f"{est['value']:>10.4f}", f"[{est['lower']:.4f}, {est['upper']:.4f}]"
            lines.append(f"{policy:<{width}}{name:<15}{value}  {interval:<22}{mean_weight:>8.3f}{ess:>9.0f}")
            if est.get("warning"):
                warnings.append(f"warning ({policy}, {name}): {est['warning']}")
            # what its own weights say beyond the policy's cell weights (a page estimator's differ)
            warnings += [
                f"warning ({policy}, {name}): {w}" for w in est.get("warnings", []) if w not in body.get("warnings", [])
            ]
        warnings += [f"warning ({policy}): {w}" for w in body.get("warnings", [])]
    lines += _per_row_lines(report, width)
    return "\n".join(lines + warnings)


def _per_row_lines(report: dict[str, Any], width: int) -> list[str]:
    """Each policy's expected reward per page row with its interval (per-cell IPS of the row)."""
    if not any(body.get("per_row") for body in report["policies"].values()):
        return []
    lines = ["per row (a shelf and its cards), ipw [95% interval]:"]
    for policy, body in report["policies"].items():
        cells = []
        for entry in body.get("per_row", []):
            est = entry["ipw"]
            cells.append(
                f"{entry['row']}: —" if est["value"] is None
                else f"{entry['row']}: {est['value']:.3f} [{est['lower']:.3f}, {est['upper']:.3f}]"
            )  # fmt: skip
        lines.append(f"{policy:<{width}}" + "   ".join(cells))
    return lines
