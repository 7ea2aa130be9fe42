"""Policies to evaluate on action logs (`action_log.py`). Each gives π(a | x_i, p_i) for every row
and action: an array of shape (n_rounds, n_actions) whose rows sum to 1.

Built in: `uniform-random`; `greedy` and `softmax[:T]` over the cross-fitted reward model (the
same q̂ that DM/DR use); `empirical:PATH`, the time-averaged action distribution per position of
another log in the same format (how often each action was shown at each position — for the Open
Bandit Dataset, Bernoulli-TS reconstructed from its own log, to be evaluated on the random log).

Any Python callable can be a policy: `--policy package.module:function` or
`--policy path/to/file.py:function`, called as `function(log: ActionLog) -> np.ndarray`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.training.evaluation.action_log import ActionLog

BUILT_IN = ("uniform-random", "greedy", "softmax", "empirical:PATH", "MODULE:FUNCTION")
DEFAULT_TEMPERATURE = 0.01

Distribution = Callable[[ActionLog, np.ndarray], np.ndarray]


class PolicyError(ValueError):
    pass


def uniform_random(log: ActionLog, q_hat: np.ndarray) -> np.ndarray:
    return np.full((log.n_rounds, log.n_actions), 1.0 / log.n_actions)


def greedy(log: ActionLog, q_hat: np.ndarray) -> np.ndarray:
    """All mass on the model's best action; ties share it."""
    best = q_hat == q_hat.max(axis=1, keepdims=True)
    return best / best.sum(axis=1, keepdims=True)


def softmax(temperature: float) -> Distribution:
    if not temperature > 0:
        raise PolicyError(f"softmax temperature must be positive, got {temperature}")

    def policy(log: ActionLog, q_hat: np.ndarray) -> np.ndarray:
        z = (q_hat - q_hat.max(axis=1, keepdims=True)) / temperature
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    return policy


def empirical(path: Path, fmt: str) -> Distribution:
    from tastemaker.training.evaluation.log_readers import read_action_log

    other = read_action_log(path, fmt)

    def policy(log: ActionLog, q_hat: np.ndarray) -> np.ndarray:
        index = {action_id: i for i, action_id in enumerate(log.action_ids)}
        unknown = [a for a in set(other.action_ids[i] for i in np.unique(other.action)) if a not in index]
        if unknown:
            raise PolicyError(f"empirical:{path} shows actions this log does not have, e.g. {sorted(unknown)[:3]}")
        counts = np.zeros((log.len_list, log.n_actions))
        mapped = np.array([index[other.action_ids[a]] for a in other.action])
        inside = other.position < log.len_list
        np.add.at(counts, (other.position[inside], mapped[inside]), 1.0)
        totals = counts.sum(axis=1, keepdims=True)
        if np.any(totals == 0):
            missing = int(np.flatnonzero(totals[:, 0] == 0)[0])
            raise PolicyError(f"empirical:{path} never shows position {missing}, which this log has")
        return (counts / totals)[log.position]

    return policy


def entry_point(spec: str) -> Distribution:
    function = load_entry_point(spec)

    def policy(log: ActionLog, q_hat: np.ndarray) -> np.ndarray:
        return np.asarray(function(log), dtype=np.float64)

    return policy


def load_entry_point(spec: str) -> Any:
    """`package.module:attr` or `path/to/file.py:attr`."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise PolicyError(f"{spec!r} is not MODULE:FUNCTION or FILE.py:FUNCTION")
    try:
        if target.endswith(".py"):
            file = Path(target)
            if not file.is_file():
                raise PolicyError(f"{spec}: no such file {file}")
            module_spec = importlib.util.spec_from_file_location(f"tastemaker_policy_{file.stem}", file)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ImportError as exc:
        raise PolicyError(f"{spec}: cannot import {target} ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PolicyError(f"{spec}: {target} has no attribute {attr!r}") from None


def resolve(name: str, fmt: str) -> Distribution:
    if name == "uniform-random":
        return uniform_random
    if name == "greedy":
        return greedy
    if name == "softmax" or name.startswith("softmax:"):
        _, _, value = name.partition(":")
        try:
            return softmax(float(value) if value else DEFAULT_TEMPERATURE)
        except ValueError:
            raise PolicyError(f"{name!r}: the temperature after softmax: must be a number") from None
    if name.startswith("empirical:"):
        return empirical(Path(name.partition(":")[2]), fmt)
    if ":" in name:
        return entry_point(name)
    raise PolicyError(f"unknown policy {name!r}; known: {', '.join(BUILT_IN)}")


def checked(name: str, distribution: np.ndarray, log: ActionLog) -> np.ndarray:
    """A policy's output, refused unless it is a distribution over actions for every row."""
    expected = (log.n_rounds, log.n_actions)
    if distribution.shape != expected:
        raise PolicyError(f"policy {name} returned shape {distribution.shape}, expected {expected}")
    bad = ~np.isfinite(distribution).all(axis=1) | (distribution < 0).any(axis=1)
    bad |= np.abs(distribution.sum(axis=1) - 1.0) > 1e-6
    if bad.any():
        raise PolicyError(
            f"policy {name}: {int(bad.sum())} rows are not probability distributions "
            f"(first at row {int(np.argmax(bad)) + 1})"
        )
    return distribution
