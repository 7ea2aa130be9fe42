"""Action logs (generic CSV/Parquet layout, Open Bandit Dataset CSV) evaluated by an Apache Beam
pipeline: the same seven estimators as `action_eval.py`, cross-fitted reward model included,
giving the in-memory estimates and intervals to 1e-9 relative on any runner.

The pipeline: parse rows (bad ones counted per column; any bad row fails the run, as in memory)
→ reward and show sums per (fold, action, position), the fold being the row's `row_key` hash →
side input → each round's weight, reward, q̂ and q̄ per policy → per-policy sums (for the
self-normalised estimators) → side input → each estimator's per-round influence → moments
(n, Σψ, Σψ²) → finished on the driver. Policies: uniform-random, greedy, softmax[:T].
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.records.log_files import LogFormatError
from tastemaker.training.evaluation.action_log import FOLDS, fold_table, row_key, row_text
from tastemaker.training.evaluation.action_policies import DEFAULT_TEMPERATURE, PolicyError
from tastemaker.training.evaluation.beam_io import (
    NoSuchLog,
    beam,
    first_line,
    match,
    parquet_columns,
    parquet_pieces,
    read_parquet_piece,
    read_text_piece,
    run_and_collect,
    text_pieces,
)
from tastemaker.training.evaluation.beam_ope import Moments, combine_weight_sums, normal_interval
from tastemaker.training.evaluation.log_readers import GENERIC, OBD, Layout
from tastemaker.training.evaluation.ope import DROS, SwitchDR, diagnostics_from_sums, with_weights

BEAM_POLICIES = ("uniform-random", "greedy", "softmax[:T]")
BEAM_ESTIMATORS = ("ipw", "snipw", "dm", "dr", "sndr", "switch-dr", "dr-os")

Parsed = tuple[int, str, int, float, float]  # fold, action id, position, reward, propensity
Unfolded = tuple[str, str, int, float, float]  # the row's text instead of its fold


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _index_like(value: float) -> bool:
    return bool(np.isfinite(value) and value >= 0 and value == round(value))


def parse_row(values: dict[str, str], layout: Layout, names: Sequence[str]) -> tuple[str, Any]:
    """("ok", Unfolded) or ("bad", column): the same rules as `log_readers.to_action_log`."""
    action = values.get(layout.action, "")
    reward = _number(values.get(layout.reward, ""))
    propensity = _number(values.get(layout.propensity, ""))
    position = _number(values[layout.position]) if layout.position in values else 0.0
    if not action.strip() or (layout.position_base and not _index_like(_number(action))):
        return "bad", layout.action
    if not np.isfinite(reward):
        return "bad", layout.reward
    if not 0 < propensity <= 1:
        return "bad", layout.propensity
    if not _index_like(position - layout.position_base):
        return "bad", layout.position
    text = row_text([values.get(name, "") for name in names])
    return "ok", (text, action, int(position) - layout.position_base, reward, propensity)


def _with_folds(group: tuple[str, Iterable[tuple[Unfolded, int]]]) -> Iterable[tuple[Parsed, int]]:
    """Identical rows, numbered: each gets the fold `row_key` gives in memory."""
    text, rows = group
    for occurrence, (row, declared) in enumerate(rows):
        yield (row_key(text, occurrence) % FOLDS, *row[1:]), declared  # type: ignore[misc]


class _Universe(beam.CombineFn):  # type: ignore[misc]
    """The action ids, whether all are indices, the largest declared n_actions and position."""

    def create_accumulator(self) -> tuple[set[str], int, int]:
        return set(), 0, 0

    def add_input(self, acc: tuple[set[str], int, int], row: tuple[Parsed, int]) -> tuple[set[str], int, int]:
        parsed, declared = row
        acc[0].add(parsed[1])
        return acc[0], max(acc[1], declared), max(acc[2], parsed[2] + 1)

    def merge_accumulators(self, accs: Iterable[tuple[set[str], int, int]]) -> tuple[set[str], int, int]:
        ids: set[str] = set()
        declared = positions = 0
        for a in accs:
            ids |= a[0]
            declared, positions = max(declared, a[1]), max(positions, a[2])
        return ids, declared, positions

    def extract_output(self, acc: tuple[set[str], int, int]) -> tuple[list[str], int, int]:
        return sorted(acc[0]), acc[1], acc[2]


def _action_index(ids: list[str], hint: int, declared: int) -> tuple[dict[str, int], int]:
    numbers = [_number(a) for a in ids]
    if all(_index_like(x) for x in numbers):
        index = {a: int(x) for a, x in zip(ids, numbers, strict=True)}
        n = max(index.values()) + 1
    else:
        index = {a: i for i, a in enumerate(ids)}
        n = len(ids)
    return index, max(n, hint, declared)


class _RoundValues(beam.DoFn):  # type: ignore[misc]
    """Each round's (w, r, q̂(x, a), q̄) for every policy, from the fold tables (built once)."""

    def __init__(self, policies: Sequence[str], hint: int) -> None:
        self._policies = list(policies)
        self._hint = hint
        self._tables: np.ndarray | None = None
        self._index: dict[str, int] = {}

    def _build(self, universe: tuple[list[str], int, int], sums: dict[Any, tuple[float, float]]) -> None:
        ids, declared, len_list = universe
        self._index, n_actions = _action_index(ids, self._hint, declared)
        rewards = np.zeros((FOLDS, n_actions, len_list))
        shows = np.zeros((FOLDS, n_actions, len_list))
        for (fold, action, position), (total, count) in sums.items():
            rewards[fold, self._index[action], position] += total
            shows[fold, self._index[action], position] += count
        tables = []
        for k in range(FOLDS):
            train = [f for f in range(FOLDS) if f != k]
            tables.append(fold_table(rewards[train].sum(axis=0), shows[train].sum(axis=0)))
        self._tables = np.stack(tables)  # (folds, n_actions, len_list)

    def process(
        self, row: tuple[Parsed, int], universe: tuple[list[str], int, int], sums: dict[Any, tuple[float, float]]
    ) -> Iterable[tuple[str, tuple[float, float, float, float]]]:
        if self._tables is None:
            self._build(universe, sums)
        assert self._tables is not None
        (fold, action_id, position, reward, propensity), _ = row
        q = self._tables[fold, :, position]
        a = self._index[action_id]
        for name in self._policies:
            distribution = _distribution(name, q)
            yield name, (float(distribution[a] / propensity), reward, float(q[a]), float(distribution @ q))


def _distribution(name: str, q: np.ndarray) -> np.ndarray:
    if name == "uniform-random":
        return np.full(q.shape, 1.0 / q.size)
    if name == "greedy":
        best = q == q.max()
        return best / best.sum()
    temperature = float(name.partition(":")[2] or DEFAULT_TEMPERATURE)
    e = np.exp((q - q.max()) / temperature)
    return e / e.sum()


def _check_policy(name: str) -> None:
    if name in ("uniform-random", "greedy"):
        return
    if name == "softmax" or name.startswith("softmax:"):
        try:
            if float(name.partition(":")[2] or DEFAULT_TEMPERATURE) > 0:
                return
        except ValueError:
            pass
    raise PolicyError(f"the Beam engine evaluates {', '.join(BEAM_POLICIES)} on action logs, not {name!r}")


def _normaliser_sums(values: tuple[str, tuple[float, float, float, float]]) -> tuple[str, tuple[float, float, float]]:
    policy, (w, r, q_logged, _) = values
    return policy, (w, w * r, w * (r - q_logged))


def _add2(values: Iterable[tuple[float, float]]) -> tuple[float, float]:
    a = b = 0.0
    for x, y in values:
        a, b = a + x, b + y
    return a, b


def _add3(values: Iterable[tuple[float, float, float]]) -> tuple[float, float, float]:
    a = b = c = 0.0
    for x, y, z in values:
        a, b, c = a + x, b + y, c + z
    return a, b, c


def _influences(
    values: tuple[str, tuple[float, float, float, float]], norm: dict[str, tuple[float, float, float]], n: int
) -> Iterable[tuple[tuple[str, str], float]]:
    """Each estimator's per-round value (for snipw and sndr: ψ − V̂, as in `ope._self_normalised`)."""
    policy, (w, r, q_logged, q_bar) = values
    total_w, total_wr, total_we = norm[policy]
    mean_w = total_w / n
    safe = mean_w if mean_w > 0 else 1.0
    e = r - q_logged
    switch, dros = SwitchDR(), DROS()
    yield (policy, "ipw"), w * r
    yield (policy, "dm"), q_bar
    yield (policy, "dr"), q_bar + w * e
    yield (policy, "switch-dr"), q_bar + (w if w <= switch.tau else 0.0) * e
    yield (policy, "dr-os"), q_bar + dros.lambda_ * w / (w * w + dros.lambda_) * e
    snipw_value = (total_wr / n) / safe
    yield (policy, "snipw"), (w * r - snipw_value * w) / safe
    correction = (total_we / n) / safe
    yield (policy, "sndr"), q_bar + (w * e - correction * w) / safe


def evaluate_action_log_with_beam(
    path: str,
    fmt: str,
    policies: Sequence[str],
    estimators: Sequence[str] = BEAM_ESTIMATORS,
    alpha: float = 0.05,
    pipeline_args: Sequence[str] = (),
    output_prefix: str | None = None,
) -> dict[str, Any]:
    """Run the pipeline over one CSV/OBD file (or a glob of CSVs with one header) or Parquet files."""

    for name in policies:
        _check_policy(name)
    unknown = [e for e in estimators if e not in BEAM_ESTIMATORS]
    if unknown:
        raise ValueError(f"the Beam engine computes {', '.join(BEAM_ESTIMATORS)}; not {', '.join(unknown)}")
    layout = OBD if fmt == "obd" else GENERIC
    try:
        files = [name for name, _ in match(path)]
    except NoSuchLog as exc:
        raise LogFormatError(str(exc)) from None
    hint = 0
    if fmt == "obd":
        item_context = Path(files[0]).parent / "item_context.csv"
        if item_context.is_file():
            with item_context.open(newline="") as handle:
                hint = sum(1 for _ in csv.DictReader(handle))

    def build(pipeline: beam.Pipeline) -> dict[str, beam.PCollection]:
        if fmt == "parquet":
            names = parquet_columns(files[0])
            rows = (
                pipeline
                | "row groups" >> beam.Create(parquet_pieces(path))
                | "read" >> beam.FlatMap(read_parquet_piece)
                | "text" >> beam.Map(lambda r: {k: "" if v is None else str(v) for k, v in r.items()})
            )
        else:
            names = next(csv.reader([first_line(files[0])]), [])
            if not names:
                raise LogFormatError(f"{files[0]}: empty file, no header")
            rows = (
                pipeline
                | "byte ranges" >> beam.Create(text_pieces(path, skip_header_lines=1))
                | "read" >> beam.FlatMap(read_text_piece)
                | "csv" >> beam.Map(lambda line: _csv_values(line, names))
            )
        for column in layout.required:
            if column not in names:
                raise LogFormatError(f"{path}: missing columns [{column!r}] (have {sorted(names)[:12]})")
        parsed = rows | "parse" >> beam.Map(lambda values: (parse_row(values, layout, names), values))
        bad = (
            parsed
            | "bad rows" >> beam.Filter(lambda p: p[0][0] == "bad")
            | "bad column" >> beam.Map(lambda p: (p[0][1], 1))
            | "count bad" >> beam.CombinePerKey(sum)
        )
        good = (
            parsed
            | "good rows" >> beam.Filter(lambda p: p[0][0] == "ok")
            | "with declared" >> beam.Map(lambda p: (p[0][1][0], (p[0][1], _declared(p[1], layout))))
            | "identical rows" >> beam.GroupByKey()
            | "folds" >> beam.FlatMap(_with_folds)
        )
        n = good | "count" >> beam.combiners.Count.Globally()
        universe = good | "universe" >> beam.CombineGlobally(_Universe())
        sums = (
            good
            | "cell" >> beam.Map(lambda g: ((g[0][0], g[0][1], g[0][2]), (g[0][3], 1.0)))
            | "cell sums" >> beam.CombinePerKey(_add2)
        )
        values = good | "round values" >> beam.ParDo(
            _RoundValues(policies, hint), beam.pvalue.AsSingleton(universe), beam.pvalue.AsDict(sums)
        )
        norm = values | "normaliser" >> beam.Map(_normaliser_sums) | "sum normaliser" >> beam.CombinePerKey(_add3)
        moments = (
            values
            | "influence" >> beam.FlatMap(_influences, beam.pvalue.AsDict(norm), beam.pvalue.AsSingleton(n))
            | "moments" >> beam.CombinePerKey(Moments())
        )
        weights = (
            values
            | "weight sums" >> beam.Map(lambda v: (v[0], (1, v[1][0], v[1][0] ** 2, v[1][0])))
            | "combine weight sums" >> beam.CombinePerKey(combine_weight_sums)
        )
        rewards = good | "rewards" >> beam.Map(lambda g: g[0][3]) | "sum rewards" >> beam.CombineGlobally(sum)
        return {"n": n, "bad": bad, "norm": norm, "moments": moments, "weights": weights, "rewards": rewards}

    collected = run_and_collect(build, pipeline_args, output_prefix)
    if collected.get("bad"):
        problems = "; ".join(f"{count} rows with a bad `{column}`" for column, count in sorted(collected["bad"]))
        raise LogFormatError(f"{path}: {problems} — nothing was evaluated")
    total = int(collected.get("n", [0])[0])
    if not total:
        raise LogFormatError(f"{path}: no rows")
    norm_sums = {policy: tuple(v) for policy, v in collected["norm"]}
    stats = {(policy, name): tuple(v) for (policy, name), v in collected["moments"]}
    diagnostics = {policy: diagnostics_from_sums(*v) for policy, v in collected["weights"]}
    report: dict[str, Any] = {
        "n_decisions": total,
        "on_policy_mean_reward": float(collected["rewards"][0]) / total,
        "engine": "beam",
        "policies": {},
    }
    for policy in policies:
        total_w, total_wr, total_we = norm_sums[policy]
        safe = total_w / total if total_w > 0 else 1.0
        shifts = {"snipw": (total_wr / total) / safe, "sndr": (total_we / total) / safe}
        estimates: dict[str, dict[str, Any]] = {}
        for name in estimators:
            count, s, q = stats[(policy, name)]
            if name in shifts:  # moments of ψ − V̂: shift by V̂ (sndr: its direct part is inside ψ already)
                shift = shifts[name]
                s, q = s + count * shift, q + 2 * shift * s + count * shift * shift
            estimate = normal_interval((count, s, q), s / count, alpha)
            estimates[name] = with_weights(name, estimate, diagnostics[policy], total)
        report["policies"][policy] = {"estimates": estimates, **diagnostics[policy].as_dict()}
    return report


def _csv_values(line: str, names: Sequence[str]) -> dict[str, str]:
    row = next(csv.reader([line]), [])
    return {name: (row[i] if i < len(row) else "") for i, name in enumerate(names)}


def _declared(values: dict[str, str], layout: Layout) -> int:
    if layout.n_actions and layout.n_actions in values:
        x = _number(values[layout.n_actions])
        return int(x) if _index_like(x) else 0
    return 0
