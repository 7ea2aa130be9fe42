"""The off-policy evaluation of home logs as an Apache Beam pipeline: the same IPW and SNIPW
(per shelf and card cell, whole-page slate and page-prefix cascade), per-row intervals and, with
the cross-fitted cell model, DM, DR, SNDR, Switch-DR, DR-OS and cascade-DR as `evaluate.py`'s
in-memory path, to 1e-9 relative, over the same decisions (home decisions that count: a deferred
one only once activated), but computed from per-decision elements and combined sums, so it runs
on any Beam runner over logs too large for one machine.

    tastemaker evaluate --engine beam --logs 'rewarded-*.jsonl' [--beam-arg=--runner=FnApiRunner] \\
        [-- beam pipeline options, e.g. --runner=FlinkRunner --flink_master=host:8081]

IPW's estimate and interval need only (n, Σv, Σv²) of per-decision values. SNIPW needs two
passes: per-cell sums first (a side input), then each decision's influence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from tastemaker.records.activation import counted
from tastemaker.records.log_files import LogFormatError, compact_rows
from tastemaker.records.logged_page import LoggedPage
from tastemaker.training.evaluation.beam_io import (
    beam,
    parquet_pieces,
    read_parquet_piece,
    read_text_piece,
    run_and_collect,
    text_pieces,
)
from tastemaker.training.evaluation.evaluate import CASCADE_NEEDS_RERUN, slate_data, slot_data, target_propensity
from tastemaker.training.evaluation.home_policies import logging_strategy, resolve
from tastemaker.training.evaluation.home_reward_model import CellRewardModel, cascade_q, model_sums, q_arrays
from tastemaker.training.evaluation.ope import DROS, SwitchDR, diagnostics_from_sums, no_estimate, with_weights
from tastemaker.v1 import records_pb2

Cell = tuple[int, int]
#: One decision under one key (a policy, or a policy and a page estimator, or a policy's DR terms):
#: (key, offset, [(cell, weight, value), ...]) over its shown cells. Its IPW-form value is
#: offset + Σ w·value; its self-normalised form normalises each cell's weights.
Element = tuple[str, float, list[tuple[Cell, float, float]]]


def decision_cells(rewarded: records_pb2.RewardedDecision, policies: Sequence[str]) -> list[Element]:
    """Per policy, every shown cell's importance weight and reward, keyed by (row, column)."""
    page = LoggedPage.of(rewarded)  # read once, for every policy and estimator below
    data = slot_data([page])
    columns = 1 + max((len(s.cards) for s in rewarded.decision.shown), default=0)
    out = []
    for policy in policies:
        target = target_propensity([page], policy)[0]
        cells = [
            (
                (int(j // columns), int(j % columns)),
                float(target[j] / data.logged_propensity[0, j]),
                float(data.rewards[0, j]),
            )
            for j in np.flatnonzero(data.mask[0])
        ]
        out.append((policy, 0.0, cells))
        # page prefixes need the logging policy re-run (LinUCB and Thompson logs carry only the whole page's)
        rerunnable = logging_strategy(rewarded.decision) is not None
        for prefix, cascade in (("slate", False), ("cascade", True))[: 2 if rerunnable else 1]:
            slate, page_target = slate_data([page], policy, cascade)
            page_cells = [
                ((int(j), 0), float(page_target[0, j] / slate.logged_propensity[0, j]), float(slate.rewards[0, j]))
                for j in np.flatnonzero(slate.mask[0])
            ]
            out.append((f"{policy}{_SEP}{prefix}", 0.0, page_cells))
    return out


#: joins a policy and a page estimator ("slate", "cascade") in the pipeline's keys
_SEP = "\x1f"


#: a parsed line or row: ("ok", the decision) or ("bad", why it is not one)
Parsed = tuple[str, Any]


def _parse(line: str) -> list[Parsed]:
    """One exported JSON line, written out with its rows at 0, 1, 2, ... (`records.log_files.compact_rows`), as
    the in-memory reader reads it; a blank line is nothing, an unreadable one is counted as bad."""
    if not line.strip():
        return []
    try:
        return [("ok", compact_rows(json_format.Parse(line, records_pb2.RewardedDecision())))]
    except (json_format.ParseError, LogFormatError) as exc:
        return [("bad", f"a line is not a RewardedDecision: {exc}")]


def _parse_record(row: dict[str, Any]) -> list[Parsed]:
    """One Parquet export row's serialized `record`."""
    try:
        return [("ok", compact_rows(records_pb2.RewardedDecision.FromString(row["record"] or b"")))]
    except (DecodeError, LogFormatError) as exc:
        return [("bad", f"a row's `record` is not a RewardedDecision: {exc}")]


def _count_and_first(values: Iterable[tuple[int, str | None]]) -> tuple[int, str | None]:
    """Bad lines: how many, and one of their reasons (the same one on every runner)."""
    count, first = 0, None
    for n, reason in values:
        count += n
        if reason is not None and (first is None or reason < first):
            first = reason
    return count, first


def _kind(rewarded: records_pb2.RewardedDecision) -> str:
    """'counted' (a home decision that enters the estimates), 'unactivated' (a deferred home
    decision never activated: kept in the log, left out) or 'other' (another surface's)."""
    if rewarded.decision.surface != "home":
        return "other"
    return "counted" if counted(rewarded) else "unactivated"


def _row_values(element: Element) -> list[tuple[tuple[str, int], tuple[int, float, float, int]]]:
    """Per page row of one decision under one key: (1, v, v², supported) with v = Σ w·value over
    the row's cells (the row's term of the per-cell or page-prefix IPS) and supported 1 when the
    target can place any of them. Rows the decision does not show contribute 0 (added at the end)."""
    key, _, cells = element
    rows: dict[int, list[float]] = {}
    for (row, _column), w, value in cells:
        entry = rows.setdefault(row, [0.0, 0.0])
        entry[0] += w * value
        entry[1] = max(entry[1], float(w > 0))
    return [((key, row), (1, v, v * v, int(supported))) for row, (v, supported) in rows.items()]


def _weight_sums(element: Element) -> tuple[str, tuple[int, float, float, float]]:
    """A key's shown slots in one decision: (count, Σw, Σw², largest w), for its diagnostics."""
    key, _, cells = element
    weights = [w for _, w, _ in cells]
    return key, (len(weights), sum(weights), sum(w * w for w in weights), max(weights, default=float("-inf")))


def combine_weight_sums(values: Iterable[tuple[int, float, float, float]]) -> tuple[int, float, float, float]:
    """Slots' (count, Σw, Σw², largest w) combined."""
    n, total, squares, peak = 0, 0.0, 0.0, float("-inf")
    for a, b, c, d in values:
        n, total, squares, peak = n + a, total + b, squares + c, max(peak, d)
    return n, total, squares, peak


def _sum_tuples(values: Iterable[tuple[Any, ...]]) -> tuple[Any, ...]:
    total: list[Any] | None = None
    for value in values:
        total = list(value) if total is None else [a + b for a, b in zip(total, value, strict=True)]
    return tuple(total or ())


class Moments(beam.CombineFn):  # type: ignore[misc]
    """(n, Σx, Σx²) of a stream of numbers."""

    def create_accumulator(self) -> tuple[int, float, float]:
        return 0, 0.0, 0.0

    def add_input(self, acc: tuple[int, float, float], x: float) -> tuple[int, float, float]:
        return acc[0] + 1, acc[1] + x, acc[2] + x * x

    def merge_accumulators(self, accs: Iterable[tuple[int, float, float]]) -> tuple[int, float, float]:
        n, s, q = 0, 0.0, 0.0
        for a in accs:
            n, s, q = n + a[0], s + a[1], q + a[2]
        return n, s, q

    def extract_output(self, acc: tuple[int, float, float]) -> tuple[int, float, float]:
        return acc


def normal_interval(moments: tuple[int, float, float], value: float, alpha: float) -> dict[str, float]:
    n, total, squares = moments
    variance = max(0.0, (squares - total * total / n) / (n - 1)) if n > 1 else float("inf")
    half = NormalDist().inv_cdf(1 - alpha / 2) * np.sqrt(variance / n)
    return {"value": value, "lower": value - half, "upper": value + half, "n_decisions": n}


def _cell_sums(element: Element) -> list[tuple[tuple[str, Cell], tuple[int, float, float]]]:
    policy, _, cells = element
    return [((policy, cell), (1, w, w * r)) for cell, w, r in cells]


def _sum3(values: Iterable[tuple[int, float, float]]) -> tuple[int, float, float]:
    n, w, wr = 0, 0.0, 0.0
    for a, b, c in values:
        n, w, wr = n + a, w + b, wr + c
    return n, w, wr


def _snipw_influence(
    element: Element, sums: dict[tuple[str, Cell], tuple[int, float, float]], n: int
) -> tuple[str, float]:
    """offset_i + Σ_j s_j (w_ij v_ij − R_j w_ij) / w̄_j, as in ope._self_normalised (ψ_i − V̂ when
    the offset is 0; sndr's offset is the direct term Σ_j q̄_ij)."""
    policy, offset, cells = element
    out = offset
    for cell, w, r in cells:
        shown, total_w, total_wr = sums[(policy, cell)]
        mean_w = total_w / n
        safe = mean_w if mean_w > 0 else 1.0
        slot_value = (total_wr / n) / safe
        out += (shown / n) * (w * r - slot_value * w) / safe
    return policy, out


def _snipw_value(sums: dict[tuple[str, Cell], tuple[int, float, float]], n: int, policy: str) -> float:
    value = 0.0
    for (p, _cell), (shown, total_w, total_wr) in sums.items():
        if p == policy:
            mean_w = total_w / n
            value += (shown / n) * ((total_wr / n) / (mean_w if mean_w > 0 else 1.0))
    return value


def _weighting_streams(
    elements: beam.PCollection, n: beam.PCollection, label: str
) -> tuple[beam.PCollection, beam.PCollection, beam.PCollection]:
    """Per key: moments of the IPW form (offset + Σ w·v), per-cell sums, and moments of the
    self-normalised influence (which needs the sums as a side input)."""
    ipw = (
        elements
        | f"{label}ipw value" >> beam.Map(lambda e: (e[0], e[1] + sum(w * v for _, w, v in e[2])))
        | f"{label}ipw moments" >> beam.CombinePerKey(Moments())
    )
    sums = (
        elements | f"{label}cell sums" >> beam.FlatMap(_cell_sums) | f"{label}sum per cell" >> beam.CombinePerKey(_sum3)
    )
    influence = (
        elements
        | f"{label}snipw influence" >> beam.Map(_snipw_influence, beam.pvalue.AsDict(sums), beam.pvalue.AsSingleton(n))
        | f"{label}snipw moments" >> beam.CombinePerKey(Moments())
    )
    return ipw, sums, influence


def read_rewarded(pipeline: beam.Pipeline, paths: str) -> beam.PCollection:
    """Rewarded decisions from `tastemaker logs export` files: JSON lines, or Parquet (a path or glob
    ending in .parquet: each row's serialized `record`), rows compacted as the in-memory reader does."""
    if paths.endswith(".parquet"):
        groups = pipeline | "row groups" >> beam.Create(parquet_pieces(paths))
        rows = groups | "read" >> beam.FlatMap(read_parquet_piece, ["record"])
        return rows | "parse" >> beam.FlatMap(_parse_record)
    pieces = pipeline | "byte ranges" >> beam.Create(text_pieces(paths))
    return pieces | "read" >> beam.FlatMap(read_text_piece) | "parse" >> beam.FlatMap(_parse)


def run(tagged: beam.PCollection, policies: Sequence[str], model_based: bool = False) -> dict[str, beam.PCollection]:
    """Wire the pipeline on a PCollection of parsed lines (`read_rewarded`); returns the result
    PCollections. Unreadable lines are counted (`bad`): the caller evaluates nothing if any."""
    parsed = tagged | "readable" >> beam.Filter(lambda p: p[0] == "ok") | "decision" >> beam.Map(lambda p: p[1])
    bad = (
        tagged
        | "unreadable" >> beam.Filter(lambda p: p[0] == "bad")
        | "reason" >> beam.Map(lambda p: (1, p[1]))
        | "count unreadable" >> beam.CombineGlobally(_count_and_first)
    )
    decisions = parsed | "counted home decisions" >> beam.Filter(lambda d: _kind(d) == "counted")
    unactivated = (
        parsed
        | "unactivated" >> beam.Filter(lambda d: _kind(d) == "unactivated")
        | "count unactivated" >> beam.combiners.Count.Globally()
    )
    elements = decisions | "cells" >> beam.FlatMap(decision_cells, policies)
    n = (
        elements
        | "one per decision" >> beam.Filter(lambda e, first: e[0] == first, policies[0])
        | beam.combiners.Count.Globally()
    )
    ipw, sums, influence = _weighting_streams(elements, n, "")
    per_row = (
        elements
        | "per-row elements" >> beam.Filter(lambda e: _SEP not in e[0] or e[0].endswith(f"{_SEP}cascade"))
        | "row values" >> beam.FlatMap(_row_values)
        | "row moments" >> beam.CombinePerKey(_sum_tuples)
    )
    weights = (
        elements
        | "weight elements" >> beam.Filter(lambda e: not e[0].endswith(f"{_SEP}dr"))
        | "weight sums" >> beam.Map(_weight_sums)
        | "combine weight sums" >> beam.CombinePerKey(combine_weight_sums)
    )
    on_policy = (
        decisions
        | "rewards" >> beam.Map(lambda d: (1, float(d.reward), float(d.defaulted)))
        | "sum rewards" >> beam.CombineGlobally(_sum_tuples)
    )
    outputs = {
        "bad": bad, "n": n, "n_unactivated": unactivated, "ipw": ipw, "sums": sums, "snipw": influence,
        "per_row": per_row, "weights": weights, "on_policy": on_policy,
    }  # fmt: skip
    if model_based:
        outputs.update(run_model_based(decisions, policies, n))
    return outputs


class _ModelTerms(beam.DoFn):  # type: ignore[misc]
    """Per decision and policy: the DR element (key policy␟dr: offset Σq̄, cells (w, r − q̂)) and
    the per-decision values of dm, switch-dr and dr-os, from the cross-fitted cell model."""

    def __init__(self, policies: Sequence[str]) -> None:
        self._policies = list(policies)
        self._model: CellRewardModel | None = None

    def process(self, rewarded: records_pb2.RewardedDecision, sums: dict[Any, tuple[float, float]]) -> Iterable[Any]:
        if self._model is None:
            self._model = CellRewardModel(dict(sums))
        page = LoggedPage.of(rewarded)  # read once, for every policy and term below
        data = slot_data([page])
        columns = 1 + max((len(s.cards) for s in rewarded.decision.shown), default=0)
        rows = len(rewarded.decision.shown)
        shown = np.flatnonzero(data.mask[0])
        switch, dros = SwitchDR(), DROS()
        for policy in self._policies:
            home_policy = resolve(policy)
            target = target_propensity([page], home_policy)[0]
            q_logged, q_target = q_arrays([page], self._model, home_policy, rows, columns)
            w = target[shown] / data.logged_propensity[0, shown]
            e = data.rewards[0, shown] - q_logged[0, shown]
            direct = float(q_target[0, shown].sum())
            cells = [
                ((int(j // columns), int(j % columns)), float(wj), float(ej))
                for j, wj, ej in zip(shown, w, e, strict=True)
            ]
            yield "dr", (f"{policy}{_SEP}dr", direct, cells)
            yield "value", ((policy, "dm"), direct)
            yield "value", ((policy, "switch-dr"), direct + float((np.where(w <= switch.tau, w, 0.0) * e).sum()))
            yield "value", ((policy, "dr-os"), direct + float((dros.lambda_ * w / (w**2 + dros.lambda_) * e).sum()))
            cascade = self._cascade_dr(page, home_policy) if logging_strategy(rewarded.decision) else None
            if cascade is not None:
                yield "value", ((policy, "cascade-dr"), cascade)

    def _cascade_dr(self, logged: LoggedPage, policy: Any) -> float | None:
        """Σ_l w_l (r_l − q̂_l) + w_l−1 q̄_l over the page's rows (`ope.CascadeDR`); None when the
        target cannot be re-run on this decision."""
        assert self._model is not None
        page, page_target = slate_data([logged], policy, cascade=True)
        modelled = cascade_q([logged], self._model, policy, page.rewards.shape[1])
        if modelled is None:
            return None
        q_logged, q_target = modelled[0][0], modelled[1][0]
        w = np.where(page.mask[0], page_target[0] / page.logged_propensity[0], 0.0)
        previous = np.concatenate([[1.0], w[:-1]])
        per_row = w * (page.rewards[0] - q_logged) + previous * q_target
        return float(np.where(page.mask[0], per_row, 0.0).sum())


def run_model_based(
    decisions: beam.PCollection, policies: Sequence[str], n: beam.PCollection
) -> dict[str, beam.PCollection]:
    """DM, DR, SNDR, Switch-DR and DR-OS: fit the cell model from summed statistics (a side input),
    then reuse the IPW/SNIPW machinery on the DR elements (IPW form = DR, self-normalised = SNDR)."""
    sums = decisions | "model statistics" >> beam.FlatMap(model_sums) | "sum statistics" >> beam.CombinePerKey(_add2)
    # one output stream, split by its tag (DaskRunner merges a multi-output ParDo's outputs into one)
    terms = decisions | "model terms" >> beam.ParDo(_ModelTerms(policies), beam.pvalue.AsDict(sums))
    dr_elements = terms | "dr terms" >> beam.Filter(lambda t: t[0] == "dr") | "dr element" >> beam.Map(lambda t: t[1])
    values = (
        terms
        | "value terms" >> beam.Filter(lambda t: t[0] == "value")
        | "model value" >> beam.Map(lambda t: t[1])
        | "model value moments" >> beam.CombinePerKey(Moments())
    )
    dr, dr_sums, sndr = _weighting_streams(dr_elements, n, "dr ")
    return {"model_values": values, "dr": dr, "dr_sums": dr_sums, "sndr": sndr}


def _add2(values: Iterable[tuple[float, float]]) -> tuple[float, float]:
    a = b = 0.0
    for x, y in values:
        a, b = a + x, b + y
    return a, b


def _weighting(
    key: str, moments: dict[str, Any], influence: dict[str, Any], sums: dict[Any, Any], n: int, alpha: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The IPW form (offset + Σ w·v) and the self-normalised form of one key's elements (without
    support, `ope.with_weights` replaces them by no estimate)."""
    first = moments[key]
    value = _snipw_value(sums, n, key)
    count, total, squares = influence[key]
    # the influence stream is ψ − (V̂ − mean offset): shift its moments for the interval's variance
    shifted = (count, total + count * value, squares + 2 * value * total + count * value * value)
    return (
        normal_interval(first, first[1] / first[0], alpha),
        normal_interval(shifted, total / count + value, alpha),
    )


def evaluate_with_beam(
    paths: str,
    policies: Sequence[str],
    alpha: float = 0.05,
    pipeline_args: Sequence[str] = (),
    output_prefix: str | None = None,
    model_based: bool = False,
) -> dict[str, Any]:
    """Run the pipeline (FnApiRunner unless `pipeline_args` say otherwise) over exported logs
    (JSON lines, or Parquet: `read_rewarded`).

    The combined sums are written as JSON lines under `output_prefix` (a temporary directory by
    default; give a shared path such as gs://… on a distributed runner) and finished here."""
    collected = run_and_collect(
        lambda pipeline: run(read_rewarded(pipeline, paths), policies, model_based),
        pipeline_args,
        output_prefix,
    )
    bad_lines, reason = collected["bad"][0] if collected.get("bad") else (0, None)
    if bad_lines:
        raise LogFormatError(f"{paths}: {bad_lines} unreadable ({reason}); nothing was evaluated")
    if not collected.get("n") or not collected["n"][0]:
        unactivated = int(collected["n_unactivated"][0]) if collected.get("n_unactivated") else 0
        raise ValueError(
            f"no home decisions in {paths} count: every one was deferred and never activated"
            if unactivated
            else f"no rewarded home decisions in {paths}"
        )
    n = int(collected["n"][0])
    sums = {(policy, (int(cell[0]), int(cell[1]))): tuple(v) for (policy, cell), v in collected["sums"]}
    sums.update({(key, (int(c[0]), int(c[1]))): tuple(v) for (key, c), v in collected.get("dr_sums", [])})
    moments = {key: tuple(v) for key, v in collected["ipw"] + collected.get("dr", [])}
    influence = {key: tuple(v) for key, v in collected["snipw"] + collected.get("sndr", [])}
    model_values = {(policy, name): tuple(v) for (policy, name), v in collected.get("model_values", [])}
    rows = 1 + max((int(row) for (_key, row), _ in collected.get("per_row", [])), default=-1)
    row_moments = {(key, int(row)): tuple(v) for (key, row), v in collected.get("per_row", [])}
    diagnostics = {key: diagnostics_from_sums(*v) for key, v in collected.get("weights", [])}
    count, rewards, defaulted = collected["on_policy"][0]
    report: dict[str, Any] = {
        "n_decisions": n,
        "n_unactivated": int(collected["n_unactivated"][0]) if collected.get("n_unactivated") else 0,
        "on_policy_mean_reward": rewards / count,
        "defaulted_share": defaulted / count,
        "engine": "beam",
        "policies": {},
    }
    # cascade estimates only when every decision's page prefixes could be weighted (as in memory)
    cascade = all(moments.get(f"{policy}{_SEP}cascade", (0,))[0] == n for policy in policies)
    if not cascade:
        report["notes"] = [CASCADE_NEEDS_RERUN]
    for policy in policies:
        estimates = {}
        keys = [("", policy), ("slate-", f"{policy}{_SEP}slate"), ("cascade-", f"{policy}{_SEP}cascade")]
        for label, key in keys[: 3 if cascade else 2]:
            estimates[f"{label}ipw"], estimates[f"{label}snipw"] = _weighting(key, moments, influence, sums, n, alpha)
        if model_based:
            key = f"{policy}{_SEP}dr"
            estimates["dr"], estimates["sndr"] = _weighting(key, moments, influence, sums, n, alpha)
            for name in ("dm", "switch-dr", "dr-os", "cascade-dr"):
                m = model_values.get((policy, name))
                if m is None or (name == "cascade-dr" and (m[0] != n or not cascade)):  # a page it cannot re-run
                    continue
                estimates[name] = normal_interval(m, m[1] / m[0], alpha)  # type: ignore[arg-type]
        per_row = []
        for row in range(rows):
            entry: dict[str, Any] = {"row": row}
            for name, key in (("ipw", policy), ("cascade-ipw", f"{policy}{_SEP}cascade"))[: 2 if cascade else 1]:
                if (key, row) in row_moments:
                    entry[name] = _row_interval(row_moments[(key, row)], n, alpha)
            per_row.append(entry)
        for name, entry in estimates.items():  # each estimator's own weights: a page's, a prefix's or a cell's
            key = f"{policy}{_SEP}{name.split('-')[0]}" if name.startswith(("slate-", "cascade-")) else policy
            estimates[name] = with_weights(name, entry, diagnostics[key], n)
        report["policies"][policy] = {"estimates": estimates, **diagnostics[policy].as_dict(), "per_row": per_row}
    return report


def _row_interval(moments: tuple[Any, ...], n: int, alpha: float) -> dict[str, Any]:
    """A row's IPS over all n decisions (those not showing the row add 0); no estimate where the
    target places none of the row's logged cells (an interval of 0 ± 0 would claim certainty)."""
    _shown, total, squares, supported = moments
    if not supported:
        return no_estimate(n)
    return normal_interval((n, total, squares), total / n, alpha)
