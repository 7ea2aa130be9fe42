"""`tastemaker settings`: the settings in force, or their reference as Markdown (docs/configuration.md);
`tastemaker keygen`: a random key for TASTEMAKER_DECISION_KEY(_FILE) or TASTEMAKER_USER_ID_KEY."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from tastemaker.cli.common import UsageError
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


#: random bytes in a generated key (written as 64 hex digits)
KEY_BYTES = 32


def cmd_keygen(args: argparse.Namespace) -> int:
    """Print a new key, or write it to --out (mode 0600) unless the file already holds one."""
    key = secrets.token_hex(KEY_BYTES)
    if args.out is None:
        print(key)
        return 0
    out: Path = args.out
    if out.exists():
        if len(out.read_text(encoding="utf-8").strip().encode()) < 16:
            raise UsageError(f"--out {out}: holds something shorter than a key (16 bytes); remove it to make a new one")
        print(f"{out} already holds a key: kept (every replica and the joiner must share one)")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    print(f"wrote a new key to {out}")
    return 0


def add_keygen(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    about = "a random key (64 hex digits) for TASTEMAKER_DECISION_KEY(_FILE) or TASTEMAKER_USER_ID_KEY"
    parser = sub.add_parser("keygen", help=about, description=f"Make {about}; printed, or written to --out.")
    parser.add_argument(
        "--out",
        type=Path,
        help="write it to this file (mode 0600); a file that already holds a key is kept, so a deployment's "
        "one-shot job can run it on every start",
    )
    parser.set_defaults(func=cmd_keygen)
