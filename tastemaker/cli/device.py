"""`tastemaker device`: the reference device runtime on the command line (no TensorFlow, no server)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tastemaker.cli.common import UsageError


def cmd_device_suggest(args: argparse.Namespace) -> int:
    import numpy as np

    from tastemaker.device.bundle import DeviceBundleError
    from tastemaker.device.runtime import DeviceSuggester
    from tastemaker.optional import MissingExtra

    try:
        suggester = DeviceSuggester.load(args.bundle, rng=np.random.default_rng(args.seed))
    except (DeviceBundleError, MissingExtra) as exc:
        raise UsageError(f"--bundle {exc}") from exc
    try:
        decision = suggester.suggest(args.text, args.k, args.lang or "", args.partial)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    for s in decision.suggestions:
        print(f"{s.sticker_id:<24} {s.score:8.3f}  p={s.propensity:.3f}")
    print(f"decision {decision.decision_id} ({decision.model_version}, {decision.policy})")
    return 0


def add_device(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    device = sub.add_parser("device", help="the reference device runtime: answer from a device bundle offline")
    device_sub = device.add_subparsers(dest="device_command", required=True, metavar="ACTION")
    suggest = device_sub.add_parser(
        "suggest",
        help="stickers for a message from a device bundle, as the phone would answer",
        description="Load a device bundle (`tastemaker stickers export-device`), encode the message with the "
        "LiteRT interpreter exactly as the server does, search the bundle's stickers, blend its chat head, "
        "explore as the bundle says and print the top k with their propensities. Imports no TensorFlow.",
    )  # fmt: skip
    suggest.add_argument("text", help="the message (with --partial: the text typed so far)")
    suggest.add_argument("--bundle", type=Path, required=True, help="device bundle file")
    suggest.add_argument("--lang", choices=("en", "hi", "bn", "ta", "te", "mr", "gu", "kn", "ml", "pa"))
    suggest.add_argument("-k", type=int, default=5, help="how many (default 5)")
    suggest.add_argument("--partial", action="store_true", help="the last word may be unfinished (typeahead)")
    suggest.add_argument("--seed", type=int, help="exploration seed, for repeatable output")
    suggest.set_defaults(func=cmd_device_suggest)
