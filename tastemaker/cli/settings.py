"""`tastemaker settings`: the settings in force, or their reference as Markdown (docs/configuration.md)."""

from __future__ import annotations

import argparse

from tastemaker.services.config import Settings, configuration_markdown, settings_in_force


def cmd_settings(args: argparse.Namespace) -> int:
    if args.markdown:
        print(configuration_markdown(), end="")
        return 0
    rows = settings_in_force(Settings.from_env())
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def add_settings(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    about = "the TASTEMAKER_* settings in force (defaults, then the environment; secrets masked)"
    parser = sub.add_parser("settings", help=about, description=f"Print {about}.")
    parser.add_argument(
        "--markdown", action="store_true", help="print the reference of every setting instead (docs/configuration.md)"
    )
    parser.set_defaults(func=cmd_settings)
