"""`tastemaker retrain --surface stickers`: the sticker loop through the gate.

1. The sticker decisions sorted by served time; the later `holdout_share` is the gate's window.
2. The current bundle is the registry's current `stickers` version; a registry without one takes
   the bundle that served the logs (`baseline`) as its first version (registered and promoted,
   reason "baseline"), so the gate has something to beat.
3. Train a candidate on the current bundle's catalog plus the (message, sent sticker) pairs of the
   earlier window, each weighted by its clipped 1/propensity (`sticker_logs.logged_pairs`); the
   current bundle's chat head (learned from chat pairs, `stickers train --pairs`) carries over. The
   version name is a fingerprint of the settings and the training decisions: a re-run on the
   same logs trains nothing new and repeats the same decision.
4. Gate: the candidate and the current bundle, each ranking the held-out decisions' logged
   candidates greedily, estimated by SNIPW (sends per suggestion list) with 95% intervals; the
   candidate is promoted only if its lower bound beats the current bundle's estimate. Serving
   processes that follow the registry swap the bundle and its index without a restart.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tastemaker.stickers.catalog import read_catalog
from tastemaker.training.evaluation.ope import SNIPW
from tastemaker.training.evaluation.sticker_ope import evaluate_stickers, sticker_decisions
from tastemaker.training.lifecycle.registry import STICKERS_KIND, Registry, RegistryError
from tastemaker.training.lifecycle.retrain import RetrainSummary, _fingerprint, gate_and_promote, gate_decision
from tastemaker.training.modeling.device_export import export_device
from tastemaker.v1 import records_pb2

#: fewer held-out sticker decisions than this cannot separate two bundles
MIN_DECISIONS = 50


def gate_stickers(
    holdout: Sequence[records_pb2.RewardedDecision], candidate: Path, current: Path, current_version: str
) -> dict[str, Any]:
    """Promote only if the candidate's lower 95% bound beats the current bundle's estimate."""
    candidate_policy, current_policy = f"encoder:{candidate}", f"encoder:{current}"
    report = evaluate_stickers(holdout, policies=[candidate_policy, current_policy], estimators=[SNIPW()])
    decision = gate_decision(
        report["policies"][candidate_policy]["estimates"]["snipw"],
        report["policies"][current_policy]["estimates"]["snipw"],
        holdout,
        "snipw (sends per suggestion list, greedy over each bundle's scores of the logged candidates)",
        current_version,
    )
    return {**decision, "on_policy_sends_per_decision": report["on_policy_sends_per_decision"]}


def retrain_stickers(
    decisions: Sequence[records_pb2.RewardedDecision],
    registry: Registry,
    baseline: Path | None = None,
    holdout_share: float = 0.3,
    ips_clip: float | None = 10.0,
    promote: bool = True,
    say: Callable[[str], None] = print,
    train_options: dict[str, Any] | None = None,
) -> RetrainSummary:
    from tastemaker.stickers.bundle import DEVICE_BUNDLE, load_bundle, save_bundle
    from tastemaker.training.modeling.sticker_logs import logged_pairs
    from tastemaker.training.modeling.sticker_training import train_encoder

    if registry.kind != STICKERS_KIND:
        raise ValueError(f"sticker bundles live in a registry of kind {STICKERS_KIND!r}, not {registry.kind!r}")
    if not 0.05 <= holdout_share <= 0.8:
        raise ValueError(f"the held-out share must be in [0.05, 0.8], got {holdout_share}")
    logged = sorted(sticker_decisions(decisions), key=lambda d: d.decision.served_at_ms)
    if len(logged) < 2 * MIN_DECISIONS:
        raise ValueError(f"{len(logged)} sticker decisions are too few to train and gate on (need {2 * MIN_DECISIONS})")
    split = int(len(logged) * (1 - holdout_share))
    train, holdout = logged[:split], logged[split:]
    say(f"[1/4] {len(logged)} sticker decisions: {len(train)} to train on, the later {len(holdout)} held out")

    current = registry.current()
    if current is None:
        if baseline is None:
            raise ValueError(
                f"{registry.home} holds no sticker bundle yet: give the bundle that served these logs "
                "(--baseline DIR or TASTEMAKER_STICKER_MODEL) so that the gate has something to beat"
            )
        try:
            current = registry.register(baseline, {"registered_at": _now(), "reason": "baseline"})
        except RegistryError as exc:
            if "already registered" not in str(exc):
                raise
            current = str(json.loads((baseline / "manifest.json").read_text(encoding="utf-8"))["version"])
        registry.promote(current, reason="baseline")
        say(f"      the registry had no sticker bundle: {current} (from {baseline}) is the baseline")
    current_path = registry.path(current)
    pairs = logged_pairs(train, clip=ips_clip)
    if not pairs:
        raise ValueError("the training window holds no sticker sent after a suggestion")
    say(f"[2/4] {len(pairs)} (message, sent sticker) pairs from the logs, weighted by 1/propensity")

    options = dict(train_options or {})
    settings = {"ips_clip": ips_clip, "holdout_share": holdout_share, **options, "parent": current}
    version = f"stickers-{_fingerprint('stickers', settings, train)}"
    trained = False
    if not registry.path(version).exists():
        stickers = read_catalog(current_path / "catalog.jsonl")
        parent = load_bundle(current_path)  # its chat head (what it learned from chat pairs) carries over
        with tempfile.TemporaryDirectory() as tmp:
            result = train_encoder(stickers, version=version, logged=pairs, **options)
            served = [d.decision.served_at_ms for d in train]
            save_bundle(
                Path(tmp) / version, result.encoder, stickers, current_path / "catalog.jsonl",
                manifest={
                    "registered_at": _now(),
                    "parent": current,
                    "data_window": {"from_ms": min(served), "to_ms": max(served), "n_decisions": len(train)},
                    "logged_pairs": len(pairs),
                    "train_seconds": result.seconds,
                },
                head=parent.head,
                head_weight=parent.head_weight if parent.head is not None else 0.0,
                prefixes=parent.prefixes,
            )  # fmt: skip
            # the phone's copy is part of the version: GetDeviceBundle serves it once this one is promoted
            device = export_device(
                load_bundle(Path(tmp) / version), Path(tmp) / version / DEVICE_BUNDLE, [p.message for p in pairs]
            )
            registry.register(Path(tmp) / version)
        trained = True
        say(f"[3/4] trained and registered {version} in {result.seconds:.0f} s, with its device bundle "
            f"({device.bytes:,} bytes)")  # fmt: skip
    else:
        say(f"[3/4] {version} is already registered (same settings and training decisions)")

    decision, promoted = gate_and_promote(
        registry,
        version,
        current,
        current,
        lambda: gate_stickers(holdout, registry.path(version), current_path, current),
        promote,
        say,
    )
    return RetrainSummary(version, trained, decision, promoted, registry.current(), [])


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
