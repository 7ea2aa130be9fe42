"""The evaluation report as one self-contained HTML file (inline SVG, no scripts, no network)
and its JSON twin: estimates with intervals per policy and estimator, importance-weight
distributions, per-row values of the home page, and estimates over time."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"]
_WIDTH = 760


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> Any:
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) / span * (out_hi - out_lo)


def _estimates_svg(report: dict[str, Any]) -> str:
    rows = [
        (policy, name, est)
        for policy, body in report["policies"].items()
        for name, est in body["estimates"].items()
        if est["lower"] is not None and math.isfinite(est["lower"]) and math.isfinite(est["upper"])
    ]
    if not rows:
        return "<p>No finite estimates.</p>"
    on_policy_mean = report.get("on_policy_mean_reward")
    marks = [] if on_policy_mean is None else [on_policy_mean]
    lo = min([e["lower"] for _, _, e in rows] + marks)
    hi = max([e["upper"] for _, _, e in rows] + marks)
    pad = (hi - lo) * 0.05 or 0.01
    x = _scale(lo - pad, hi + pad, 230, _WIDTH - 20)
    height = 30 + 18 * len(rows)
    parts = [f'<svg width="{_WIDTH}" height="{height}" role="img" aria-label="estimates with 95% intervals">']
    if on_policy_mean is not None:
        on_policy = x(on_policy_mean)
        parts.append(
            f'<line x1="{on_policy:.1f}" y1="10" x2="{on_policy:.1f}" y2="{height - 10}" '
            'stroke="#999" stroke-dasharray="4"/>'
        )
        parts.append(
            f'<text x="{on_policy - 4:.1f}" y="12" font-size="10" fill="#666" text-anchor="end">'
            "logging policy on-policy mean</text>"
        )
    policies = list(report["policies"])
    for i, (policy, name, est) in enumerate(rows):
        y = 28 + 18 * i
        colour = _COLOURS[policies.index(policy) % len(_COLOURS)]
        parts.append(f'<text x="5" y="{y + 4}" font-size="11">{html.escape(policy)} · {html.escape(name)}</text>')
        parts.append(
            f'<line x1="{x(est["lower"]):.1f}" y1="{y}" x2="{x(est["upper"]):.1f}" y2="{y}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        parts.append(f'<circle cx="{x(est["value"]):.1f}" cy="{y}" r="3.5" fill="{colour}"/>')
    parts.append(f'<text x="230" y="{height - 2}" font-size="10">{lo - pad:.4g}</text>')
    parts.append(f'<text x="{_WIDTH - 70}" y="{height - 2}" font-size="10">{hi + pad:.4g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bars_svg(values: list[float], labels: list[str], title: str, colour: str = "#1f77b4") -> str:
    if not values:
        return ""
    height, top = 150, max(max(values), 1e-12)
    width = max(1.0, (_WIDTH - 60) / len(values))
    parts = [f'<svg width="{_WIDTH}" height="{height + 30}" role="img" aria-label="{html.escape(title)}">']
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = value / top * height
        parts.append(
            f'<rect x="{40 + i * width:.1f}" y="{height - h + 5:.1f}" width="{width * 0.85:.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{html.escape(label)}: {value:.4g}</title></rect>'
        )
    parts.append(f'<text x="40" y="{height + 22}" font-size="10">{html.escape(labels[0])}</text>')
    parts.append(f'<text x="{_WIDTH - 120}" y="{height + 22}" font-size="10">{html.escape(labels[-1])}</text>')
    parts.append(f'<text x="2" y="12" font-size="10">{top:.3g}</text></svg>')
    return "".join(parts)


def _policy_section(policy: str, body: dict[str, Any], colour: str) -> str:
    out = [f"<h2>{html.escape(policy)}</h2>"]
    out.append(
        f"<p>effective sample size {body.get('effective_sample_size', float('nan')):.0f}, "
        f"mean weight {body.get('mean_weight', float('nan')):.3f}, "
        f"max weight {body.get('max_weight', float('nan')):.3g}</p>"
    )
    for warning in body.get("warnings", []):
        out.append(f'<p class="warn">⚠ {html.escape(warning)}</p>')
    histogram = body.get("weight_histogram") or {}
    if histogram.get("counts"):
        edges = histogram["edges"]
        labels = [f"{edges[i]:.3g}–{edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
        out.append(f"<h3>Importance weights (log bins; {histogram.get('zero', 0)} slots with weight 0)</h3>")
        out.append(_bars_svg([float(c) for c in histogram["counts"]], labels, "weight distribution", colour))
    if body.get("unsupported_mass") is not None:
        out.append(f"<p>share of the target's mass where the log has no support: {body['unsupported_mass']:.2%}</p>")
    if body.get("per_position_ipw"):
        values = body["per_position_ipw"]
        out.append("<h3>IPW value per position</h3>")
        out.append(_bars_svg(values, [f"position {i}" for i in range(len(values))], "per-position values", colour))
    if body.get("per_row"):
        out.append(_per_row_section(body["per_row"], colour))
    elif body.get("per_row_ipw"):
        rows = body["per_row_ipw"]
        out.append("<h3>IPW value per home-page row</h3>")
        out.append(_bars_svg(rows, [f"row {i + 1}" for i in range(len(rows))], "per-row values", colour))
    if body.get("over_time_ipw"):
        points = body["over_time_ipw"]
        out.append("<h3>IPW estimate over served time (equal-size windows)</h3>")
        out.append(
            _bars_svg(
                [p["value"] for p in points], [f"window {i + 1}" for i in range(len(points))], "over time", colour
            )
        )
    return "".join(out)


def _interval_cell(estimate: dict[str, Any] | None) -> str:
    if estimate is None:
        return "<td></td>"
    if estimate.get("value") is None:
        return "<td>— no support</td>"
    return f"<td>{estimate['value']:.4g} [{estimate['lower']:.4g}, {estimate['upper']:.4g}]</td>"


def _per_row_section(per_row: list[dict[str, Any]], colour: str) -> str:
    """Each home-page row's expected reward with its interval: the per-cell IPS of the row's cells
    and, where the logs allow, the row's term of the page-prefix (cascade) IPS."""
    cascade = any("cascade-ipw" in entry for entry in per_row)
    head = "<tr><th>row</th><th>ipw [95%]</th>" + ("<th>cascade-ipw term [95%]</th>" if cascade else "") + "</tr>"
    rows = "".join(
        f"<tr><td>row {entry['row'] + 1}</td>{_interval_cell(entry.get('ipw'))}"
        + (_interval_cell(entry.get("cascade-ipw")) if cascade else "")
        + "</tr>"
        for entry in per_row
    )
    values = [float(entry["ipw"]["value"] or 0.0) for entry in per_row if "ipw" in entry]
    labels = [f"row {entry['row'] + 1}" for entry in per_row if "ipw" in entry]
    return (
        "<h3>Expected reward per home-page row (a shelf and its cards)</h3>"
        + _bars_svg(values, labels, "per-row values", colour)
        + f"<table>{head}{rows}</table>"
    )


def _summary(report: dict[str, Any]) -> str:
    text = f"{report['n_decisions']} decisions"
    if report.get("on_policy_mean_reward") is not None:
        text += f"; the logging policy's on-policy mean reward is {report['on_policy_mean_reward']:.5g}"
    if report.get("engine"):
        text += f"; engine: {html.escape(str(report['engine']))}"
    return text + "."


def render_html(report: dict[str, Any], title: str = "Tastemaker off-policy evaluation") -> str:
    rows = "".join(
        f"<tr><td>{html.escape(policy)}</td><td>{html.escape(name)}</td>"
        + (
            "<td>—</td><td>no support</td></tr>"
            if e["value"] is None
            else f"<td>{e['value']:.5g}</td><td>[{e['lower']:.5g}, {e['upper']:.5g}]</td></tr>"
        )
        for policy, body in report["policies"].items()
        for name, e in body["estimates"].items()
    )
    sections = "".join(
        _policy_section(policy, body, _COLOURS[i % len(_COLOURS)])
        for i, (policy, body) in enumerate(report["policies"].items())
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:{_WIDTH + 40}px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px}}.warn{{color:#a40}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>{_summary(report)} Intervals are 95%.</p>
<h2>Estimates</h2>
{_estimates_svg(report)}
<table><tr><th>policy</th><th>estimator</th><th>estimate</th><th>95% interval</th></tr>{rows}</table>
{sections}
</body></html>
"""


def write_report(report: dict[str, Any], path: Path) -> tuple[Path, Path]:
    """Write `path` (HTML) and its JSON twin beside it; returns both paths."""
    twin = path.with_suffix(".json")
    path.write_text(render_html(report), encoding="utf-8")
    twin.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return path, twin
