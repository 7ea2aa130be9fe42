"""The `tastemaker` command line, one module per command group. Entry points only parse input and
call the wiring; bad input exits with code 2 and a one-line reason."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from tastemaker.cli import device, evaluation, models, run, settings, stickers, streams
from tastemaker.cli.common import EPILOG, UsageError, log
from tastemaker.services.config import ConfigError, Settings

__all__ = ["UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tastemaker",
        description="Tastemaker: real-time home-shelf ranking with contextual bandits, propensity logs "
        "and off-policy evaluation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_up(sub)
    run.add_serve(sub)
    run.add_health(sub)
    streams.add_features(sub)
    streams.add_joiner(sub)
    models.add_train(sub)
    models.add_models(sub)
    models.add_retrain(sub)
    stickers.add_stickers(sub)
    device.add_device(sub)
    streams.add_learner(sub)
    evaluation.add_evaluate(sub)
    evaluation.add_logs(sub)
    evaluation.add_check(sub)
    streams.add_events(sub)
    settings.add_settings(sub)
    settings.add_keygen(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        level = Settings.from_env().log_level
    except ConfigError as exc:
        print(f"tastemaker: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except (UsageError, ConfigError) as exc:
        print(f"tastemaker: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`tastemaker settings | head`): nothing wrong here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as exc:  # the environment, not the input: a port in use, a broker unreachable, ...
        log.error("%s", exc)
        print(f"tastemaker: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
