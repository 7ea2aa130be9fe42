"""Optional heavy dependencies (TensorFlow, TFRS, YDF, ScaNN, Beam), imported on first use with an
error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """`import module`, or MissingExtra naming `pip install 'tastemaker[extra]'`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{purpose} needs `{module.split('.')[0]}`, which is not installed: "
            f"pip install 'tastemaker[{extra}]' (`make setup` installs every extra)"
        ) from exc
