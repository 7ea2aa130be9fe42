"""The HTML report is self-contained, shows every estimate, and has a JSON twin."""

import json
import re
from pathlib import Path

from tastemaker.training.evaluation.report import write_report


def _report() -> dict:
    estimate = {"value": 0.5, "lower": 0.4, "upper": 0.6, "n_decisions": 100}
    return {
        "n_decisions": 100,
        "on_policy_mean_reward": 0.45,
        "policies": {
            "greedy": {
                "estimates": {"ipw": estimate, "snipw": {**estimate, "value": 0.52}},
                "effective_sample_size": 80.0,
                "mean_weight": 1.01,
                "max_weight": 3.0,
                "warnings": ["a <dangerous> & odd warning"],
                "weight_histogram": {"edges": [0.5, 1.0, 3.0], "counts": [40, 60], "zero": 5},
                "per_row_ipw": [0.3, 0.15],
                "over_time_ipw": [{**estimate, "from_ms": 0, "to_ms": 1}, {**estimate, "from_ms": 1, "to_ms": 2}],
            },
            "uniform-random": {"estimates": {"ipw": {**estimate, "upper": float("inf")}}},
            # per_row (both engines): each row's interval, and the cascade term's where the logs allow
            "softmax": {
                "estimates": {"ipw": estimate},
                "per_row": [
                    {"row": 0, "ipw": {**estimate, "value": 0.3125}, "cascade-ipw": {**estimate, "value": 0.2875}},
                    {"row": 1, "ipw": {**estimate, "value": None, "lower": None, "upper": None}},
                ],
            },
        },
    }


def test_report_is_self_contained_and_complete(tmp_path: Path) -> None:
    page, twin = write_report(_report(), tmp_path / "out.html")
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text
    assert "<script" not in text and not re.search(r"(src|href)=\"https?:", text)
    for needle in ("greedy", "snipw", "uniform-random", "row 2", "window 2", "5 slots with weight 0"):
        assert needle in text
    assert "&lt;dangerous&gt; &amp; odd" in text  # escaped, not injected
    assert "<td>0.3125 [0.4, 0.6]</td><td>0.2875 [0.4, 0.6]</td>" in text and "<td>— no support</td>" in text
    assert json.loads(twin.read_text()) == json.loads(json.dumps(_report()))
