"""Are the logged propensities right? Two checks on live logs (`tastemaker check propensities`,
and `retrain`'s validation, which stops on a failure).

1. **Replay**: each decision whose logging policy can be re-run from the log (ε-greedy, softmax,
   SquareCB, floored or not) is re-run on its recorded candidates, scores and parameters, and every
   logged (item, position) propensity is compared with the recomputed one: equal to 1e-9 for closed
   forms and enumerations, within `z` × the logged Monte-Carlo error bound otherwise.
2. **Frequencies** (every strategy, LinUCB and Thompson included, whose propensities depend on
   posterior state the log does not carry): decisions whose ranking problem repeats exactly (same
   candidates, scores, strategy and parameters — a context) must show each (item, position) about
   as often as their logged propensities say. Per context and cell an exact binomial test of the
   shown count against the logged propensity (the Horvitz–Thompson expectation Σ p of a context's
   cell); the threshold is Bonferroni-corrected so that correct logs raise a false alarm with
   probability at most `alpha` over the whole check. A strategy that
   shows something other than what it logs fails it even when every logged number is self-consistent.

A shelf shown under an explanation is the (shelf, explanation) pair: both checks test the pair's
propensity (the shelf's times P(explanation | shelf)), and the frequencies count each pair apart.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tastemaker.records.logged_page import LoggedPage, pages_of, shown_cells
from tastemaker.v1 import records_pb2

#: closed-form and enumerated propensities must replay to this
EXACT = 1e-9
#: Monte-Carlo propensities must replay within this many logged standard errors
MC_SIGMAS = 5.0
#: the whole frequency check's false-alarm probability on correct logs
ALPHA = 1e-3
#: a context is tested once it repeats this often
MIN_REPEATS = 30


@dataclass(frozen=True)
class Mismatch:
    decision_id: str
    item_id: str
    row: int
    column: int  # 0: the shelf; 1 + k: its k-th card
    logged: float
    expected: float
    check: str  # "replay" or "frequency"

    def line(self) -> str:
        where = "shelf" if self.column == 0 else f"card {self.column - 1}"
        if self.check == "replay":
            return (
                f"replay: decision {self.decision_id} row {self.row} {where} {self.item_id!r}: logged "
                f"{self.logged:.6g}, the logging policy re-run gives {self.expected:.6g}"
            )
        return (
            f"frequency: {self.item_id!r} at row {self.row} {where}, in a context repeated over decisions like "
            f"{self.decision_id}: shown {self.logged:.4f} of the time, the logged propensities say {self.expected:.4f}"
        )


@dataclass
class PropensityCheck:
    decisions: int = 0
    replayed: int = 0
    cells_replayed: int = 0
    not_replayable: dict[str, int] = field(default_factory=dict)
    contexts_tested: int = 0
    #: repeated contexts whose logged propensities moved (a posterior the log does not carry changed)
    contexts_moved: int = 0
    cells_tested: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def lines(self, limit: int = 10) -> list[str]:
        head = (
            f"propensity check: {'PASSED' if self.passed else 'FAILED'} on {self.decisions} home decisions — "
            f"replay: {self.replayed} decisions, {self.cells_replayed} cells"
        )
        if self.not_replayable:
            head += " (not replayable: " + ", ".join(f"{k} {v}" for k, v in sorted(self.not_replayable.items())) + ")"
        head += (
            f"; frequencies: {self.contexts_tested} repeated contexts, {self.cells_tested} cells "
            f"(false-alarm rate {ALPHA:g} on correct logs)"
        )
        if self.contexts_moved:
            head += f", {self.contexts_moved} repeated contexts not tested (their propensities moved: learning)"
        out = [head] + [m.line() for m in self.mismatches[:limit]]
        if len(self.mismatches) > limit:
            out.append(f"... and {len(self.mismatches) - limit} more")
        if not self.contexts_tested and not self.replayed:
            out.append("nothing could be checked: no replayable decision and no context repeated often enough")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "decisions": self.decisions, "replayed": self.replayed,
            "cells_replayed": self.cells_replayed, "not_replayable": self.not_replayable,
            "contexts_tested": self.contexts_tested, "contexts_moved": self.contexts_moved,
            "cells_tested": self.cells_tested,
            "mismatches": [m.__dict__ for m in self.mismatches],
        }  # fmt: skip


def replay(decisions: Sequence[records_pb2.RewardedDecision | LoggedPage], report: PropensityCheck) -> None:
    """Each decision's logging policy re-run on its logged candidates: every logged (item, cell)
    propensity against the recomputed one (a card's is its shelf's times its own)."""
    from tastemaker.training.evaluation.evaluate import page_grid, target_propensity
    from tastemaker.training.evaluation.home_policies import logging_strategy

    replayable = []
    for page in pages_of(decisions):
        if logging_strategy(page.decision) is None:
            name = page.decision.exploration.strategy or "unknown"
            report.not_replayable[name] = report.not_replayable.get(name, 0) + 1
        else:
            replayable.append(page)
    if not replayable:
        return
    rows, cols = page_grid(replayable)
    recomputed = target_propensity(replayable, "logging").reshape(len(replayable), rows, cols)
    for i, page in enumerate(replayable):
        decision = page.decision
        error = decision.exploration.propensity_error_bound
        tolerance = EXACT if decision.exploration.propensity_method != "monte-carlo" else MC_SIGMAS * error + EXACT
        for (row, column), item, logged in page.shown_cells():
            expected = float(recomputed[i, row, column])
            report.cells_replayed += 1
            if abs(expected - logged) > tolerance:
                report.mismatches.append(Mismatch(decision.decision_id, item, row, column, logged, expected, "replay"))
    report.replayed += len(replayable)


def _context(decision: records_pb2.DecisionLog) -> bytes:
    """What a decision's propensities are a function of, as far as the log tells: its candidates and
    their scores, the strategy, its parameters, the floor, the constraints, the page size."""
    exploration = decision.exploration
    parts = [
        exploration.strategy, repr(sorted(exploration.parameters.items())), repr(exploration.propensity_floor),
        repr(list(decision.shelf_candidates.item_ids)), np.asarray(decision.shelf_candidates.scores).tobytes().hex(),
        repr([(p.shelf_id, p.position) for p in decision.pinned_shelves]), repr(sorted(decision.excluded_item_ids)),
        repr((decision.max_shelves, decision.max_cards_per_shelf)), decision.model_version,
        repr([(s.shelf_id, list(s.card_ids), list(s.explanation_ids)) for s in decision.candidates]),
    ]  # fmt: skip
    return hashlib.blake2b("\x1f".join(parts).encode()).digest()


def _explained_cells(decision: records_pb2.DecisionLog) -> list[tuple[tuple[int, int], str, float]]:
    """`shown_cells`, each item named with the explanation its row was shown under (a pair is one action)."""
    said = {s.position: s.explanation_id for s in decision.shown}
    return [
        (cell, f"{item} under {said[cell[0]]!r}" if said[cell[0]] else item, p)
        for cell, item, p in shown_cells(decision)
    ]


def frequencies(
    decisions: Sequence[records_pb2.RewardedDecision],
    report: PropensityCheck,
    alpha: float = ALPHA,
    min_repeats: int = MIN_REPEATS,
) -> None:
    groups: dict[bytes, list[records_pb2.DecisionLog]] = defaultdict(list)
    for rewarded in decisions:
        groups[_context(rewarded.decision)].append(rewarded.decision)
    tests: list[tuple[str, str, int, int, int, float, float]] = []
    for members in groups.values():
        if len(members) < min_repeats:
            continue
        shown: dict[tuple[str, int, int], int] = defaultdict(int)
        logged: dict[tuple[str, int, int], float] = {}
        moved = False
        for decision in members:
            for (row, column), item, p in _explained_cells(decision):
                shown[(item, row, column)] += 1
                moved = moved or abs(logged.setdefault((item, row, column), p) - p) > EXACT
        if moved:  # one context has one propensity per cell: these differ in what the log does not say
            report.contexts_moved += 1
            continue
        report.contexts_tested += 1
        n = len(members)
        for (item, row, column), p in logged.items():
            tests.append((members[0].decision_id, item, row, column, n, shown[(item, row, column)] / n, p))
    report.cells_tested += len(tests)
    if not tests:
        return
    threshold = alpha / len(tests)  # Bonferroni over every cell tested
    for decision_id, item, row, column, n, frequency, p in tests:
        if binomial_two_sided(round(frequency * n), n, p) < threshold:
            report.mismatches.append(Mismatch(decision_id, item, row, column, frequency, p, "frequency"))


def binomial_two_sided(count: int, n: int, p: float) -> float:
    """P-value of `count` successes in `n` draws of probability `p`: twice the smaller exact tail
    (the normal approximation is far too light-tailed for the small propensities of lower rows)."""
    p = min(max(p, 0.0), 1.0)
    if p in (0.0, 1.0):
        return 1.0 if count == round(p * n) else 0.0
    k = np.arange(n + 1)
    log_factorial = np.cumsum(np.log(np.maximum(np.arange(n + 1), 1)))
    log_pmf = log_factorial[n] - log_factorial[k] - log_factorial[n - k] + k * math.log(p) + (n - k) * math.log1p(-p)
    pmf = np.exp(log_pmf)
    lower, upper = float(pmf[: count + 1].sum()), float(pmf[count:].sum())
    return min(1.0, 2.0 * min(lower, upper))


def check_propensities(
    decisions: Sequence[records_pb2.RewardedDecision], alpha: float = ALPHA, min_repeats: int = MIN_REPEATS
) -> PropensityCheck:
    """Both checks on the home decisions of `decisions`, each read once (`records.logged_page`)."""
    home = [LoggedPage.of(d) for d in decisions if d.decision.surface == "home" and d.decision.shown]
    report = PropensityCheck(decisions=len(home))
    replay(home, report)
    frequencies([page.rewarded for page in home], report, alpha, min_repeats)
    return report
