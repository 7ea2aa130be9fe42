"""`tastemaker retrain`: validate the logs, train the next reward model from them, gate it by
off-policy evaluation on a later held-out window, register it and promote it only with confidence.

1. Sort the rewarded decisions by served time; the later `holdout_share` is the gate's window.
2. Validate both windows (`validation.py`) against the current model's training window (its
   manifest's `data_stats`), or the training window against the held-out one when there is no
   current model; critical findings stop the run.
3. Train (`reward_training.py`, importance-weighted with a clip) on the earlier window. The version
   name is a fingerprint of the kind, the settings and the training decisions, so re-running on
   the same logs trains nothing new and repeats the same decision (safe for cron or Airflow).
4. Gate: greedy over the candidate vs greedy over the current model, both estimated by SNIPW per
   page cell on the held-out window; the candidate is promoted only if its lower 95% bound beats
   the current policy's estimate. The decision and its numbers go into the candidate's manifest.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tastemaker.records.activation import activated_only
from tastemaker.training.evaluation.evaluate import evaluate
from tastemaker.training.evaluation.ope import SNIPW
from tastemaker.training.lifecycle.registry import Registry
from tastemaker.training.lifecycle.validation import CRITICAL, ValidationFailed, validate, window_stats
from tastemaker.v1 import records_pb2


@dataclass(frozen=True)
class RetrainSummary:
    version: str
    trained: bool  # False: this exact model was already registered (an idempotent re-run)
    gate: dict[str, Any]
    promoted: bool
    current: str | None
    warnings: list[str]

    def lines(self) -> list[str]:
        g = self.gate
        head = f"candidate {self.version} ({'trained' if self.trained else 'already registered'})"
        return [
            head,
            f"gate on {g['window']['n_decisions']} held-out decisions ({g['estimator']}): candidate "
            f"{_shown(g['candidate'], interval=True)} vs current ({g['current_version']}) {_shown(g['current'])} "
            f"→ {g['decision']}",
            f"{'promoted' if self.promoted else 'not promoted'}; current model: {self.current}",
            *[f"warning: {w}" for w in self.warnings],
        ]


def gate(
    holdout: Sequence[records_pb2.RewardedDecision], candidate: Path, current: Path | None, current_version: str
) -> dict[str, Any]:
    """Promote only if the candidate's lower 95% bound beats the current policy's estimate."""
    candidate_policy = f"model:{candidate}"
    current_policy = f"model:{current}" if current is not None else "model:builtin"
    if candidate_policy == current_policy:
        raise ValueError("the gate needs a candidate other than the current model")
    report = evaluate(holdout, policies=[candidate_policy, current_policy], estimators=[SNIPW()], slates=False)
    return gate_decision(
        report["policies"][candidate_policy]["estimates"]["snipw"],
        report["policies"][current_policy]["estimates"]["snipw"],
        holdout,
        "snipw (per page cell, greedy over each model)",
        current_version,
    )


def _shown(estimate: dict[str, Any], interval: bool = False) -> str:
    if estimate["value"] is None:
        return "no estimate (no logged support)"
    if not interval:
        return f"{estimate['value']:.4f}"
    return f"{estimate['value']:.4f} [{estimate['lower']:.4f}, {estimate['upper']:.4f}]"


def gate_decision(
    candidate: dict[str, Any],
    current: dict[str, Any],
    holdout: Sequence[records_pb2.RewardedDecision],
    estimator: str,
    current_version: str,
) -> dict[str, Any]:
    """The gate's rule and record: promote only if the candidate's lower 95% bound beats the
    current policy's estimate (both estimated on the same held-out window). Either without an
    estimate (no logged support) refuses: nothing says the candidate is better."""
    served = [d.decision.served_at_ms for d in holdout]
    comparable = candidate["lower"] is not None and current["value"] is not None
    return {
        "decision": "promote" if comparable and candidate["lower"] > current["value"] else "refuse",
        "estimator": estimator,
        "candidate": candidate,
        "current": current,
        "current_version": current_version,
        "window": {"from_ms": min(served), "to_ms": max(served), "n_decisions": len(holdout)},
    }


def _fingerprint(kind: str, settings: dict[str, Any], decisions: Sequence[records_pb2.RewardedDecision]) -> str:
    digest = hashlib.sha256(repr((kind, sorted(settings.items()))).encode())
    for decision_id in sorted(d.decision.decision_id for d in decisions):
        digest.update(decision_id.encode())
    return digest.hexdigest()[:12]


def retrain(
    decisions: Sequence[records_pb2.RewardedDecision],
    registry: Registry,
    kind: str = "gbt",
    holdout_share: float = 0.3,
    epochs: int = 5,
    ips_clip: float | None = 10.0,
    promote: bool = True,
    say: Callable[[str], None] = print,
    targets: str = "ips",
) -> RetrainSummary:
    from tastemaker.training.modeling.reward_training import train_reward_model

    if not 0.05 <= holdout_share <= 0.8:
        raise ValueError(f"the held-out share must be in [0.05, 0.8], got {holdout_share}")
    home = sorted(
        (d for d in activated_only(decisions) if d.decision.surface == "home"), key=lambda d: d.decision.served_at_ms
    )
    if len(home) < 50:
        raise ValueError(f"{len(home)} home decisions are too few to train and gate on (need 50)")
    split = int(len(home) * (1 - holdout_share))
    train, holdout = home[:split], home[split:]
    say(f"[1/4] {len(home)} decisions: {len(train)} to train on, the later {len(holdout)} held out for the gate")

    current = registry.current()
    reference = registry.manifest(current).get("data_stats") if current else None
    findings = validate(train, reference or window_stats(holdout)) + validate(holdout, reference or window_stats(train))
    critical = [f for f in findings if f.severity == CRITICAL]
    if critical:
        raise ValidationFailed(critical, f"{len(train)} training and {len(holdout)} held-out decisions")
    warnings = sorted({f"{f.check}: {f.message}" for f in findings})
    say(f"[2/4] logs valid ({len(warnings)} warnings)")

    settings = {"epochs": epochs, "ips_clip": ips_clip, "holdout_share": holdout_share, "targets": targets}
    version = f"{kind}-{_fingerprint(kind, settings, train)}"
    trained = False
    if not registry.path(version).exists():
        with tempfile.TemporaryDirectory() as tmp:
            served = [d.decision.served_at_ms for d in train]
            extra = {
                "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "data_window": {"from_ms": min(served), "to_ms": max(served), "n_decisions": len(train)},
                "data_stats": window_stats(train),
                "parent": current,
                "validation_warnings": warnings,
            }
            result = train_reward_model(kind, train, Path(tmp) / version, version=version, epochs=epochs,
                                        ips_clip=ips_clip, extra_manifest=extra, targets=targets)  # fmt: skip
            registry.register(result.directory)
        trained = True
        say(f"[3/4] trained and registered {version}")
    else:
        say(f"[3/4] {version} is already registered (same kind, settings and training decisions)")

    decision, promoted = gate_and_promote(
        registry,
        version,
        current,
        current or "builtin",
        lambda: gate(
            holdout, registry.path(version), registry.path(current) if current else None, current or "builtin"
        ),
        promote,
        say,
    )
    return RetrainSummary(version, trained, decision, promoted, registry.current(), warnings)


def gate_and_promote(
    registry: Registry,
    version: str,
    current: str | None,
    current_name: str,
    run_gate: Callable[[], dict[str, Any]],
    promote: bool,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], bool]:
    """The last step of every retrain: gate once per (candidate, current) pair — the decision is kept
    in the candidate's manifest, and a candidate that is already current keeps its own — then
    promote when the gate says so (and `promote`). Returns (the decision, whether it promoted)."""
    decision = registry.manifest(version).get("gate")
    if decision is None or (decision.get("current_version") != current_name and current != version):
        decision = run_gate()
        registry.update_manifest(version, {"gate": decision})
    say(f"[4/4] gate: {decision['decision']}")
    promoted = promote and decision["decision"] == "promote" and current != version
    if promoted:
        registry.promote(version, reason="gate")
    return decision, promoted
