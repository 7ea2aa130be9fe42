"""Open Bandit Pipeline as a peer: the same arrays through tastemaker's estimators and through
OBP 0.5.7 in its own venv (`make obp-venv`), for the parity test and the OPE benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tastemaker.training.evaluation.ope import OffPolicyEstimator, SlotData

ROOT = Path(__file__).resolve().parents[2]
OBP_PYTHON = Path(os.environ.get("TASTEMAKER_OBP_PYTHON", ROOT / ".venv-obp" / "bin" / "python"))
RUNNER = ROOT / "tests" / "obp" / "run_obp.py"


@dataclass(frozen=True)
class BanditArrays:
    """OBP's bandit-feedback layout: one round per row, position as context."""

    action: np.ndarray  # (n,)
    position: np.ndarray  # (n,), 0-based
    reward: np.ndarray  # (n,)
    pscore: np.ndarray  # (n,)
    action_dist: np.ndarray  # (n, n_actions, len_list): the target policy
    q_hat: np.ndarray  # (n, n_actions, len_list): the reward model


def ours(estimator: OffPolicyEstimator, a: BanditArrays) -> tuple[float, float]:
    """tastemaker's estimate from OBP's arrays, and the seconds it took (derivation included)."""
    start = time.perf_counter()
    rows = np.arange(len(a.action))
    target = a.action_dist[rows, a.action, a.position][:, None]
    q_at_position = a.q_hat[rows, :, a.position]
    q_bar = (a.action_dist[rows, :, a.position] * q_at_position).sum(axis=1)[:, None]
    data = SlotData(
        a.reward[:, None],
        a.pscore[:, None],
        np.ones((len(rows), 1), dtype=bool),
        q_at_position[rows, a.action][:, None],
    )
    value = estimator.point(data, target, q_bar)
    return value, time.perf_counter() - start


def obp_available() -> bool:
    return OBP_PYTHON.is_file()


def run_obp(a: BanditArrays, estimators: list[str], repeat: int = 1) -> dict[str, dict[str, float]]:
    """OBP's estimates and best time per call, from its own venv."""
    if not obp_available():
        raise RuntimeError(f"Open Bandit Pipeline's venv is missing ({OBP_PYTHON}): run `make obp-venv`")
    with tempfile.TemporaryDirectory() as tmp:
        inputs, output = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(inputs, action=a.action, position=a.position, reward=a.reward, pscore=a.pscore,
                 action_dist=a.action_dist, q_hat=a.q_hat)  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        subprocess.run(
            [str(OBP_PYTHON), str(RUNNER), str(inputs), str(output), "--repeat", str(repeat),
             "--estimators", ",".join(estimators)],
            check=True, env=env, capture_output=True, text=True,
        )  # fmt: skip
        return json.loads(output.read_text())


SLATE_RUNNER = ROOT / "tests" / "obp" / "run_obp_slate.py"


def run_obp_slate(arrays: dict[str, np.ndarray]) -> dict[str, float]:
    """OBP 0.5.7's slate estimates (`tests/obp/run_obp_slate.py`) on one-level slates in its layout."""
    if not obp_available():
        raise RuntimeError(f"Open Bandit Pipeline's venv is missing ({OBP_PYTHON}): run `make obp-venv`")
    with tempfile.TemporaryDirectory() as tmp:
        inputs, output = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(inputs, **arrays)  # type: ignore[arg-type]
        subprocess.run(
            [str(OBP_PYTHON), str(SLATE_RUNNER), str(inputs), str(output)], check=True, capture_output=True, text=True
        )
        return json.loads(output.read_text())
