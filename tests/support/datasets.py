"""Where the real datasets are (shared/datasets beside the repository, or TASTEMAKER_OBD_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_CANDIDATES = [
    os.environ.get("TASTEMAKER_OBD_DIR", ""),
    str(Path(__file__).resolve().parents[3] / "shared" / "datasets" / "obd"),
    "/work/shared/datasets/obd",
]
OBD_DIR = next((Path(c) for c in _CANDIDATES if c and (Path(c) / "bts" / "all" / "all.csv").is_file()), None)
needs_obd = pytest.mark.skipif(
    OBD_DIR is None, reason="the Open Bandit Dataset sample (shared/datasets/obd) is not here"
)
