"""Log validation before any training: a schema check, value ranges, propensity anomalies and
per-slice statistics compared with a reference window. Critical findings stop a retrain with a
readable report; warnings are printed and kept in the model's manifest.

Slices are the decision context's values (device, country, tier, language, surface, ... — every
context key the logs carry) plus the surface. Checks:
- schema: a decision without an id, a home decision without shown items, propensities outside (0, 1];
- ranges: non-finite or negative feature values or rewards;
- propensities: the logging policy re-run (ε-greedy, softmax) must reproduce the logged
  propensities; and the uniform-random target's mean importance weight must be about 1;
- slices: a slice with at least `min_share` of the reference window that is missing, or whose
  share fell below half, in the checked window;
- drift (warning): a feature whose mean moved by more than half a standard deviation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tastemaker.records.feature_vector import is_count
from tastemaker.v1 import records_pb2

CRITICAL, WARNING = "critical", "warning"


@dataclass(frozen=True)
class Finding:
    severity: str
    check: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "check": self.check, "message": self.message}


class ValidationFailed(RuntimeError):
    def __init__(self, findings: Sequence[Finding], window: str) -> None:
        self.findings = list(findings)
        lines = [f"log validation stopped the run ({window}):"]
        lines += [f"  [{f.severity}] {f.check}: {f.message}" for f in findings]
        super().__init__("\n".join(lines))


def window_stats(decisions: Sequence[records_pb2.RewardedDecision]) -> dict[str, Any]:
    """What a later window is compared with: slice shares and feature means and deviations."""
    slices: Counter[str] = Counter()
    features: dict[str, list[float]] = {}
    for rewarded in decisions:
        decision = rewarded.decision
        slices[f"surface={decision.surface}"] += 1
        for key, value in decision.context.items():
            slices[f"{key}={value}"] += 1
        for name, value in zip(decision.feature_names, decision.feature_values, strict=False):
            if is_count(name):
                features.setdefault(name, []).append(float(value))
    n = max(len(decisions), 1)
    return {
        "n_decisions": len(decisions),
        "slices": {k: v / n for k, v in sorted(slices.items())},
        "features": {
            k: {"mean": float(np.mean(np.log1p(np.maximum(v, 0)))), "std": float(np.std(np.log1p(np.maximum(v, 0))))}
            for k, v in sorted(features.items())
        },
    }


def _schema_and_ranges(decisions: Sequence[records_pb2.RewardedDecision]) -> list[Finding]:
    no_id = sum(1 for r in decisions if not r.decision.decision_id)
    empty = sum(1 for r in decisions if r.decision.surface == "home" and not r.decision.shown)
    bad_propensity = sum(
        1
        for r in decisions
        for s in r.decision.shown
        if not (0 < s.propensity <= 1) or any(not (0 < c.propensity <= 1) for c in s.cards)
    )
    bad_features = sum(1 for r in decisions if any(not np.isfinite(v) or v < 0 for v in r.decision.feature_values))
    bad_rewards = sum(1 for r in decisions if not np.isfinite(r.reward) or r.reward < 0)
    out = []
    for count, check, text in (
        (no_id, "schema", "decisions without a decision_id"),
        (empty, "schema", "home decisions that showed nothing"),
        (bad_propensity, "schema", "decisions with a propensity outside (0, 1]"),
        (bad_features, "ranges", "decisions with a negative or non-finite feature value"),
        (bad_rewards, "ranges", "decisions with a negative or non-finite reward"),
    ):
        if count:
            out.append(Finding(CRITICAL, check, f"{count} {text}"))
    return out


def _propensities(decisions: Sequence[records_pb2.RewardedDecision]) -> list[Finding]:
    from tastemaker.training.evaluation.evaluate import slot_data, target_propensity
    from tastemaker.training.lifecycle.propensity_check import check_propensities

    home = [r for r in decisions if r.decision.surface == "home" and r.decision.shown]
    if not home:
        return []
    out = []
    checked = check_propensities(home)
    if not checked.passed:
        out.append(Finding(CRITICAL, "propensities", "\n  ".join(checked.lines(limit=5))))
    data = slot_data(home)
    uniform = target_propensity(home, "uniform-random")
    # each decision's mean weight over its shown cells: cells of one page share their shelf's weight,
    # so the spread is measured across decisions
    cells = np.where(data.mask, uniform / np.where(data.mask, data.logged_propensity, 1.0), 0.0)
    weights = cells.sum(axis=1) / np.maximum(data.mask.sum(axis=1), 1)
    stderr = float(weights.std(ddof=1) / np.sqrt(len(weights))) if len(weights) > 1 else 0.0
    if abs(weights.mean() - 1.0) > max(0.05, 4 * stderr):
        out.append(
            Finding(
                CRITICAL,
                "propensities",
                f"the uniform-random policy's importance weights average {weights.mean():.3f}, not 1: "
                "logged propensities are off",
            )
        )
    return out


def compare(stats: dict[str, Any], reference: dict[str, Any], min_share: float = 0.02) -> list[Finding]:
    out = []
    for name, share in reference.get("slices", {}).items():
        if share < min_share:
            continue
        now = stats["slices"].get(name, 0.0)
        if now == 0.0:
            out.append(Finding(CRITICAL, "slices", f"slice {name} ({share:.1%} of the reference) is missing"))
        elif now < share / 2:
            out.append(Finding(CRITICAL, "slices", f"slice {name} shrank from {share:.1%} to {now:.1%}"))
    for name, ref in reference.get("features", {}).items():
        now = stats["features"].get(name)
        if now is None:
            out.append(Finding(WARNING, "drift", f"feature {name} is no longer logged"))
            continue
        spread = max(ref["std"], now["std"], 1e-9)
        if abs(now["mean"] - ref["mean"]) > 0.5 * spread:
            out.append(
                Finding(
                    WARNING, "drift", f"feature {name} moved from {ref['mean']:.3f} to {now['mean']:.3f} (log scale)"
                )
            )
    return out


def validate(
    decisions: Sequence[records_pb2.RewardedDecision], reference: dict[str, Any] | None = None
) -> list[Finding]:
    if not decisions:
        return [Finding(CRITICAL, "schema", "the window holds no decisions")]
    findings = _schema_and_ranges(decisions)
    if not any(f.check == "schema" for f in findings):
        findings += _propensities(decisions)
    if reference:
        findings += compare(window_stats(decisions), reference)
    return findings
