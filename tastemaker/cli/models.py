"""`tastemaker` commands: reward-model training, the model registry and `retrain`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tastemaker.cli.common import (
    UsageError,
    load_rewarded,
    settings_of,
)


def cmd_train_reward_model(args: argparse.Namespace) -> int:
    if args.epochs <= 0:
        raise UsageError(f"--epochs must be positive, got {args.epochs}")
    if args.factors < 1:
        raise UsageError(f"--factors must be at least 1, got {args.factors}")
    rewarded = load_rewarded(args)
    from tastemaker.training.modeling.reward_training import train_reward_model

    try:
        clip = args.ips_clip if args.ips_clip is not None else (10.0 if args.targets == "dr" else 0.0)
        trained = train_reward_model(
            args.kind, rewarded, args.out, version=args.version, epochs=args.epochs, ips_clip=clip or None,
            targets=args.targets, factors=args.factors,
        )  # fmt: skip
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in trained.metrics.items())
    print(f"wrote {args.kind} reward model {trained.version} to {trained.directory} ({metrics})")
    print(f"serve it with TASTEMAKER_REWARD_MODEL={trained.directory}")
    return 0


def _registry(args: argparse.Namespace, kind: str | None = None):  # type: ignore[no-untyped-def]
    from tastemaker.training.lifecycle.registry import REGISTRY_KIND, Registry

    root = args.registry or settings_of(args).model_registry
    if not root:
        raise UsageError("give --registry DIR or set TASTEMAKER_MODEL_REGISTRY")
    return Registry(Path(root), kind or getattr(args, "model_kind", None) or REGISTRY_KIND)


def cmd_models_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    entries = registry.versions()
    if not entries:
        print(f"no models in {registry.home}")
        return 0
    print(f"{'':2}{'version':<28}{'kind':<10}{'registered':<22}{'gate':<10}{'held-out AUC':>13}")
    for entry in entries:
        m = entry.manifest
        gate = (m.get("gate") or {}).get("decision", "-")
        auc = (m.get("metrics") or {}).get("heldout_auc")
        auc_text = "-" if auc is None else f"{auc:.3f}"
        print(f"{'*' if entry.current else ' ':2}{entry.version:<28}{m.get('kind', '?'):<10}"
              f"{str(m.get('registered_at', '-')):<22}{gate:<10}{auc_text:>13}")  # fmt: skip
    return 0


def cmd_models_register(args: argparse.Namespace) -> int:
    from tastemaker.training.lifecycle.registry import RegistryError

    registry = _registry(args)
    try:
        version = registry.register(args.artifact, {"registered_at": _now()})
    except RegistryError as exc:
        raise UsageError(str(exc)) from exc
    print(f"registered {version} in {registry.home}")
    return 0


def cmd_models_promote(args: argparse.Namespace) -> int:
    from tastemaker.models.artifacts import ArtifactError
    from tastemaker.training.lifecycle.registry import RegistryError

    registry = _registry(args)
    try:
        registry.promote(args.version)
    except (RegistryError, ArtifactError) as exc:
        raise UsageError(str(exc)) from exc
    print(f"{args.version} is current; serving processes follow within their refresh interval")
    return 0


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from tastemaker.training.lifecycle.registry import RegistryError

    registry = _registry(args)
    try:
        version = registry.rollback()
    except RegistryError as exc:
        raise UsageError(str(exc)) from exc
    print(f"rolled back: {version} is current")
    return 0


#: exit code of a retrain stopped by log validation (the report is on stderr)
EXIT_VALIDATION = 3


def cmd_retrain(args: argparse.Namespace) -> int:
    from tastemaker.training.lifecycle.retrain import retrain
    from tastemaker.training.lifecycle.validation import ValidationFailed

    if args.surface == "stickers":
        return _retrain_stickers(args)
    registry = _registry(args)
    rewarded = load_rewarded(args)
    try:
        summary = retrain(
            rewarded, registry, kind=args.kind, holdout_share=args.holdout_share, epochs=args.epochs,
            ips_clip=args.ips_clip or None, promote=not args.no_promote, targets=args.targets,
        )  # fmt: skip
    except ValidationFailed as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_VALIDATION
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print("\n".join(summary.lines()))
    return 0


def _retrain_stickers(args: argparse.Namespace) -> int:
    from tastemaker.training.lifecycle.registry import STICKERS_KIND, RegistryError
    from tastemaker.training.lifecycle.sticker_retrain import retrain_stickers

    registry = _registry(args, STICKERS_KIND)
    baseline = args.baseline or settings_of(args).sticker_model or None
    options = {} if args.sticker_epochs is None else {"epochs": args.sticker_epochs}
    if args.sticker_epochs is not None and args.sticker_epochs <= 0:
        raise UsageError(f"--sticker-epochs must be positive, got {args.sticker_epochs}")
    rewarded = load_rewarded(args)
    try:
        summary = retrain_stickers(
            rewarded, registry, baseline=Path(baseline) if baseline else None, holdout_share=args.holdout_share,
            ips_clip=args.ips_clip or None, promote=not args.no_promote, train_options=options,
        )  # fmt: skip
    except (ValueError, RegistryError) as exc:
        raise UsageError(str(exc)) from exc
    print("\n".join(summary.lines()))
    return 0


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def add_train(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    train = sub.add_parser("train", help="train models from rewarded decisions")
    train_sub = train.add_subparsers(dest="train_command", required=True, metavar="WHAT")
    reward_model = train_sub.add_parser(
        "reward-model",
        help="the home reward model: logistic, dnn or fm (TensorFlow, served in numpy) or gbt (YDF)",
    )
    reward_model.add_argument(
        "--kind",
        choices=("logistic", "dnn", "fm", "gbt", "banditnet"),
        required=True,
        help="fm: a second-order factorization machine (every pair of feature columns interacts through "
        "--factors factors); banditnet: the policy learned directly (self-normalised IPS with the Lagrangian trick)",
    )
    reward_model.add_argument(
        "--factors", type=int, default=8, help="the factorization machine's factors per column (kind fm; default 8)"
    )
    reward_model.add_argument(
        "--logs", type=Path, help="rewarded decisions (.jsonl or .parquet export); default: the topic"
    )
    reward_model.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    reward_model.add_argument("--epochs", type=int, default=5, help="TensorFlow training epochs (default 5)")
    reward_model.add_argument("--version", help="version name (default KIND-TIMESTAMP)")
    reward_model.add_argument(
        "--targets", choices=("ips", "dr"), default="ips",
        help="ips: the logged clicks (weighted by --ips-clip); dr: doubly robust pseudo-outcomes over shown "
        "and sampled unshown candidates (default ips)",
    )  # fmt: skip
    reward_model.add_argument(
        "--ips-clip", type=float,
        help="clip of 1/propensity (0: unweighted; default: unweighted for ips, 10 for dr)",
    )  # fmt: skip
    reward_model.set_defaults(func=cmd_train_reward_model)


def add_models(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    models = sub.add_parser("models", help="the model registry: list, register, promote, rollback")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for name, func, text in (
        ("list", cmd_models_list, "versions, the current one starred, with gate decisions"),
        ("register", cmd_models_register, "copy an artifact directory into the registry"),
        ("promote", cmd_models_promote, "make VERSION current (serving follows within seconds)"),
        ("rollback", cmd_models_rollback, "make the previously current version current again"),
    ):
        action = models_sub.add_parser(name, help=text)
        action.add_argument("--registry", help="registry directory (default TASTEMAKER_MODEL_REGISTRY)")
        action.add_argument(
            "--kind", dest="model_kind", choices=("reward-model", "stickers"), default="reward-model",
            help="which models: reward models (default) or sticker bundles",
        )  # fmt: skip
        if name == "register":
            action.add_argument(
                "artifact", type=Path, help="an artifact directory (`train reward-model --out`, `stickers train --out`)"
            )
        if name == "promote":
            action.add_argument("version")
        action.set_defaults(func=func)


def add_retrain(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    retrain_parser = sub.add_parser(
        "retrain",
        help="validate logs, train a reward model (or a sticker bundle), gate it by OPE on later logs, "
        "promote with confidence",
        description="Exit codes: 0 done (promoted or refused by the gate), 2 bad input, 3 stopped by log "
        "validation (the report is on stderr). Re-running on the same logs repeats the same decision.",
    )
    retrain_parser.add_argument("--registry", help="registry directory (default TASTEMAKER_MODEL_REGISTRY)")
    retrain_parser.add_argument(
        "--surface", choices=("home", "stickers"), default="home",
        help="home: the reward model (default); stickers: the sticker encoder, from (message, sent sticker) pairs",
    )  # fmt: skip
    retrain_parser.add_argument(
        "--baseline", help="stickers: the bundle that served the logs, when the registry has no sticker "
        "bundle yet (default TASTEMAKER_STICKER_MODEL)",
    )  # fmt: skip
    retrain_parser.add_argument(
        "--sticker-epochs", type=int, help="stickers: training epochs (default: `stickers train`'s)"
    )
    retrain_parser.add_argument("--logs", type=Path, help="rewarded decisions (.jsonl/.parquet); default: the topic")
    retrain_parser.add_argument("--kind", choices=("logistic", "dnn", "fm", "gbt", "banditnet"), default="gbt")
    retrain_parser.add_argument("--holdout-share", type=float, default=0.3, help="later share held out for the gate")
    retrain_parser.add_argument("--epochs", type=int, default=5)
    retrain_parser.add_argument("--ips-clip", type=float, default=10.0, help="importance-weight clip (0: unweighted)")
    retrain_parser.add_argument(
        "--targets", choices=("ips", "dr"), default="ips",
        help="training targets: IPS-weighted clicks or doubly robust pseudo-outcomes (default ips)",
    )  # fmt: skip
    retrain_parser.add_argument("--no-promote", action="store_true", help="register and gate, but do not promote")
    retrain_parser.set_defaults(func=cmd_retrain)
