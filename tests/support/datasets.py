"""Where the real datasets are: TASTEMAKER_OBD_DIR (the Open Bandit Dataset sample, a folder holding
bts/all/all.csv). Unset, or not such a folder: the tests that need it skip and say why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def obd_dir() -> Path | None:
    """TASTEMAKER_OBD_DIR when it holds the sample, else None."""
    raw = os.environ.get("TASTEMAKER_OBD_DIR", "")
    return Path(raw) if raw and (Path(raw) / "bts" / "all" / "all.csv").is_file() else None


OBD_DIR = obd_dir()
needs_obd = pytest.mark.skipif(
    OBD_DIR is None, reason="TASTEMAKER_OBD_DIR does not name the Open Bandit Dataset sample (bts/all/all.csv)"
)
