"""The capacity plan (`docs/capacity.md`), computed from the benchmarks' own output.

    python -m tests.benchmarks.bench_rank_home --json .cache/capacity/rank_home.json
    python -m tests.benchmarks.bench_features --json .cache/capacity/features.json
    python -m tests.benchmarks.bench_learning --json .cache/capacity/learning.json
    python -m tests.benchmarks.bench_ope --json .cache/capacity/ope.json
    python -m tests.benchmarks.bench_stickers --model .cache/stickers/model --sections grpc \
        --json .cache/capacity/stickers.json      # optional: the chat app's sticker serving rows
    python -m tests.benchmarks.capacity --measured .cache/capacity --out docs/capacity.md

Every per-process rate comes from those files (measured on this machine; each says so in the
table), the record sizes from records this script builds with the serving code; everything
per day is arithmetic on the workload below, and every count of machines is an extrapolation:
it assumes a process scales with its core, as `serve --workers`, consumer groups and Redis
Cluster are built to (measured here only up to 2 processes, on 2 shared cores).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: a process is planned at this share of its measured rate (headroom for GC, rebalances, skew)
UTILISATION = 0.6
SECONDS_PER_DAY = 86_400
#: Redis: a master planned at most this many GB of data and this many commands/s (assumptions,
#: the usual sizing of one Redis core; not measured here)
REDIS_GB_PER_MASTER = 25.0
REDIS_OPS_PER_MASTER = 80_000
#: Kafka: partitions per topic, at least the consumers of the busiest group, at most this many MB/s each
PARTITION_MB_S = 5.0


@dataclass(frozen=True)
class Workload:
    name: str
    daily_users: float
    pages_per_user: float
    events_per_day: float
    suggestions_per_day: float
    peak_factor: float
    #: outcomes (clicks, sends) reported per decision served (assumption)
    outcomes_per_decision: float


MUSIC = Workload("music app home page", 100e6, 3, 100e6 * 40, 0, 3.0, 0.3)
CHAT = Workload("chat app", 200e6, 0, 4e9, 500e6, 3.0, 0.2)


def _load(directory: Path, name: str) -> dict[str, Any]:
    path = directory / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing; run the benchmark that writes it (see --help)")
    return dict(json.loads(path.read_text()))


def record_sizes() -> dict[str, float]:
    """Bytes on the wire of a packed 20×20 → 10×10 home decision log (ranked by the serving code,
    mean of 50 pages), an outcome, and a sticker decision log of 50 candidates, 8 shown, with its
    message as context (sticker decisions are not packed) — built here."""
    import numpy as np

    from tastemaker.bandits.simulator import SimulatedWorld
    from tastemaker.records.layout import pack
    from tastemaker.services.requests import HomeRequest
    from tastemaker.v1 import records_pb2
    from tests.support.simulated import home_service

    world = SimulatedWorld(n_shelves=20, cards_per_shelf=20, seed=3)
    service = home_service(world, shelves=10, cards=10)
    sizes = [
        len(
            pack(
                service.rank(HomeRequest(f"user-{i}", {"device": "ios", "country": "IN"}, (), 10, 10))
            ).SerializeToString()
        )
        for i in range(50)
    ]
    outcome = records_pb2.Outcome(
        outcome_id="0" * 32, decision_id="0" * 48, item_id="s03-card-16", reward=1.0, reported_at_ms=1_790_000_000_000
    )
    sticker = records_pb2.DecisionLog(
        decision_id="0" * 48, user_id="user-123456", surface="stickers", served_at_ms=1_790_000_000_000,
        feature_values=list(np.random.default_rng(0).random(100)), client_id="chat-app", reward_window_ms=30_000,
        context={"message": "haha that was so funny yaar, see you tomorrow at the party", "language": "en"},
    )  # fmt: skip
    shelf = sticker.shown.add(shelf_id="stickers")
    shelf.card_candidates.item_ids.extend(f"emoji-{i:04x}" for i in range(50))
    for i in range(8):
        shelf.cards.add(card_id=f"emoji-{i:04x}", position=i, propensity=0.1)
    return {
        "home_decision_bytes": float(np.mean(sizes)),
        "outcome_bytes": float(len(outcome.SerializeToString())),
        "sticker_decision_bytes": float(len(sticker.SerializeToString())),
    }


def _ceil(x: float) -> int:
    return max(1, math.ceil(x - 1e-9))


def plan(workload: Workload, measured: dict[str, Any], sizes: dict[str, float]) -> list[tuple[str, str, str]]:
    """(what, value, how it was found) rows for one workload."""
    rows: list[tuple[str, str, str]] = []
    peak = workload.peak_factor / SECONDS_PER_DAY
    pages = workload.daily_users * workload.pages_per_user * peak
    events = workload.events_per_day * peak
    suggestions = workload.suggestions_per_day * peak
    decisions = pages + suggestions
    outcomes = decisions * workload.outcomes_per_decision
    if pages:
        rows.append(("peak home pages/s", f"{pages:,.0f}", "workload × peak ÷ 86,400"))
    rows.append(("peak events/s", f"{events:,.0f}", "workload × peak ÷ 86,400"))
    if suggestions:
        rows.append(("peak sticker suggestions/s", f"{suggestions:,.0f}", "workload × peak ÷ 86,400"))
    if pages:
        per_worker = measured["rank_home_req_s"]
        workers = _ceil(pages / (per_worker * UTILISATION))
        rows.append((
            "serve workers (home)", f"{workers:,}",
            f"measured {per_worker:,.0f} RankHome/s per worker over gRPC (20×20 → 10×10, ε-greedy, this machine's "
            f"2 cores shared with the broker and Redis) at {UTILISATION:.0%}; extrapolated",
        ))  # fmt: skip
    if suggestions:
        per_worker = measured.get("suggest_req_s")
        if per_worker:
            rows.append((
                "serve workers (stickers)", f"{_ceil(suggestions / (per_worker * UTILISATION)):,}",
                f"measured {per_worker:,.0f} SuggestStickers/s per worker (one caller, one call at a time: a lower "
                f"bound) at {UTILISATION:.0%}; extrapolated",
            ))  # fmt: skip
        else:
            rows.append(("serve workers (stickers)", "not computed", "no SuggestStickers rate measured (see below)"))
    processor = measured["processor_events_s"]
    processors = _ceil(events / (processor * UTILISATION))
    rows.append((
        "stream processors", f"{processors:,}",
        f"measured {processor:,.0f} events/s per process (confluent-kafka, one Redis) at {UTILISATION:.0%}; "
        "extrapolated",
    ))  # fmt: skip
    learner = measured["learner_decisions_s"]
    learners = _ceil(decisions / (learner * UTILISATION))
    rows.append((
        "learners", f"{learners:,}",
        f"measured {learner:,.0f} rewarded decisions/s per process (confluent-kafka) at {UTILISATION:.0%}; "
        "extrapolated",
    ))  # fmt: skip
    decision_bytes = pages * sizes["home_decision_bytes"] + suggestions * sizes["sticker_decision_bytes"]
    outcome_bytes = outcomes * sizes["outcome_bytes"]
    event_bytes = events * measured["event_bytes"]
    kinds = [f"{sizes['home_decision_bytes']:,.0f} B a home page (packed)"] if pages else []
    kinds += [f"{sizes['sticker_decision_bytes']:,.0f} B a sticker decision"] if suggestions else []
    rows.append(("Kafka in, decisions", f"{decision_bytes / 1e6:,.1f} MB/s", f"{', '.join(kinds)} (built here)"))
    rows.append((
        "Kafka in, outcomes", f"{outcome_bytes / 1e6:,.1f} MB/s",
        f"{workload.outcomes_per_decision} outcomes a decision (assumed), {sizes['outcome_bytes']:.0f} B each",
    ))  # fmt: skip
    rows.append(
        (
            "Kafka in, events",
            f"{event_bytes / 1e6:,.1f} MB/s",
            f"{measured['event_bytes']:.0f} B an event (the bench's stream)",
        )
    )
    partitions = max(processors, _ceil(event_bytes / 1e6 / PARTITION_MB_S))
    rows.append((
        "partitions of tastemaker.events", f"{partitions:,}",
        f"≥ the processors, ≤ {PARTITION_MB_S:.0f} MB/s each (assumed); decisions/rewarded: "
        f"≥ the learners ({learners})",
    ))  # fmt: skip
    users = workload.daily_users
    memory_gb = users * measured["feature_bytes_per_user"] / 1e9
    reads = pages + suggestions  # one feature read per request
    writes = events / measured["events_per_round_trip"]
    masters = max(_ceil(memory_gb / REDIS_GB_PER_MASTER), _ceil((reads + writes) / REDIS_OPS_PER_MASTER))
    rows.append((
        "Redis memory (features)", f"{memory_gb:,.0f} GB",
        f"{measured['feature_bytes_per_user']:,.0f} B per user measured (MEMORY USAGE after bench_features' stream, "
        f"~100 events a user) × {users / 1e6:,.0f} M users",
    ))  # fmt: skip
    rows.append((
        "Redis Cluster masters", f"{masters:,}",
        f"≤ {REDIS_GB_PER_MASTER:.0f} GB and ≤ {REDIS_OPS_PER_MASTER:,} commands/s each (assumed): "
        f"{reads:,.0f} reads/s + {writes:,.0f} batch writes/s (one round trip per "
        f"{measured['events_per_round_trip']:,.0f} events, measured)",
    ))  # fmt: skip
    if pages:  # the home pipeline: every policy re-run on every 20×20 page
        per_day, ope = workload.daily_users * workload.pages_per_user, measured["ope_home_decisions_s_per_worker"]
        source = f"measured {ope:,.0f} home decisions/s on one Dask worker (bench_ope's home pipeline, 3 policies)"
    else:  # sticker suggestions: one ranked list each, like an action log's rounds (a proxy)
        per_day, ope = workload.suggestions_per_day, measured["ope_action_rows_s_per_worker"]
        source = f"proxy: {ope:,.0f} action-log rows/s on one Dask worker (bench_ope; sticker OPE runs in memory today)"
    rows.append((
        "OPE worker-hours a day of logs", f"{per_day / ope / 3600:,.0f}", f"{source}; extrapolated",
    ))  # fmt: skip
    for workers in (32, 128, 512):
        hours = per_day / (ope * workers) / 3600
        rows.append((
            f"OPE of one day's decisions on {workers} Dask workers", f"{hours:,.1f} h",
            f"{source}; linear in workers: extrapolated",
        ))  # fmt: skip
    return rows


def _measured(directory: Path) -> dict[str, Any]:
    features, learning = _load(directory, "features"), _load(directory, "learning")
    rank_home, ope = _load(directory, "rank_home"), _load(directory, "ope")
    confluent = features["confluent"]
    out: dict[str, Any] = {
        "processor_events_s": confluent["processor_events_per_s"],
        "feature_bytes_per_user": confluent["feature_bytes_per_user"],
        "events_per_round_trip": features["max_batch"] / max(confluent["redis_round_trips_per_batch"], 1e-9),
        "event_bytes": features["event_bytes"],
        "learner_decisions_s": learning["confluent"]["decisions_per_s"],
        "rank_home_req_s": rank_home["ε-greedy, serve --workers 1"]["rps"],
        "ope_action_rows_s_per_worker": ope["action_log"]["Beam Dask, 1 worker"]["rounds_per_s"],
        "ope_home_decisions_s_per_worker": ope["home"]["Beam Dask, 1 worker"]["decisions_per_s"],
    }
    stickers = directory / "stickers.json"
    if stickers.is_file():
        out["suggest_req_s"] = json.loads(stickers.read_text()).get("suggest_req_s")
    return out


def render(measured: dict[str, Any], sizes: dict[str, float], commit: str, directory: Path) -> str:
    lines = [
        "# Capacity plan",
        "",
        "Generated by `python -m tests.benchmarks.capacity` (its docstring lists the benchmark runs it reads) at "
        f"`{commit}`; do not edit by hand. **Measured here**: the per-process rates and sizes named in each row "
        "(one 2-core VM; the broker, Redis and the callers share those cores, so per-core rates are lower "
        "bounds). **Assumed**: the workloads' unstated parts (events per music user, outcomes per decision, "
        f"peak = 3× the mean), Redis at ≤ {REDIS_GB_PER_MASTER:.0f} GB and ≤ {REDIS_OPS_PER_MASTER:,} commands/s a "
        f"master, ≤ {PARTITION_MB_S:.0f} MB/s a partition. **Extrapolated**: every count of processes — a "
        f"process planned at {UTILISATION:.0%} of its measured rate, processes scaling with cores (measured "
        "here only to 2).",
        "",
    ]
    for workload in (MUSIC, CHAT):
        lines += [f"## {workload.name}", "", _describe(workload), "", "| What | Plan | From |", "|---|---|---|"]
        lines += [f"| {what} | {value} | {how} |" for what, value, how in plan(workload, measured, sizes)]
        lines.append("")
    lines += [
        "## What saturates first",
        "",
        _saturation(measured, sizes),
        "",
        *_scaling(directory),
        "## Inputs",
        "",
        "```json",
        json.dumps({"measured": measured, "record_sizes": sizes}, indent=2, ensure_ascii=False),
        "```",
        "",
    ]
    return "\n".join(lines)


def _describe(workload: Workload) -> str:
    if workload is MUSIC:
        return (
            "100 M daily users, 3 home loads each (20 × 20 candidates → 10 × 10), peak 3× the mean; "
            "assumed: 40 events a user a day (plays, skips, clicks), 0.3 outcomes a page."
        )
    return (
        "4 B events and 500 M sticker suggestions a day, peak 3× the mean; assumed: 200 M users with "
        "features, 0.2 sends a suggestion."
    )


def _saturation(measured: dict[str, Any], sizes: dict[str, float]) -> str:
    """Per workload: the stage that needs the most cores (the OPE job counted as always-on workers:
    its worker-hours a day ÷ 24), and what bounds Redis — read off the plans."""
    lines = []
    counted = ("serve workers (home)", "serve workers (stickers)", "stream processors", "learners")
    for workload in (MUSIC, CHAT):
        rows = {what: value for what, value, _ in plan(workload, measured, sizes)}
        counts = {
            what: float(rows[what].replace(",", "")) for what in counted if what in rows and rows[what][0].isdigit()
        }
        counts["the OPE job (worker-hours a day ÷ 24)"] = (
            float(rows["OPE worker-hours a day of logs"].replace(",", "")) / 24
        )
        largest = max(counts, key=counts.__getitem__)
        memory_gb = float(rows["Redis memory (features)"].split()[0].replace(",", ""))
        by_memory = _ceil(memory_gb / REDIS_GB_PER_MASTER)
        bound = "memory" if by_memory >= int(rows["Redis Cluster masters"].replace(",", "")) else "commands/s"
        others = ", ".join(
            f"{what} {n:,.0f}" for what, n in sorted(counts.items(), key=lambda kv: -kv[1]) if what != largest
        )
        lines.append(
            f"- **{workload.name}**: {largest} needs the most cores ({counts[largest]:,.0f}; then {others}); "
            f"Redis is bound by {bound}."
        )
    lines.append(
        "- Each of these is CPU-bound Python that scales out by processes (consumer-group members, "
        "`serve --workers` and replicas, Dask workers); Kafka's bytes are small beside one broker's."
    )
    return "\n".join(lines)


def _scaling(directory: Path) -> list[str]:
    path = directory / "scaling.json"
    if not path.is_file():
        return []
    measured = json.loads(path.read_text())
    lines = [
        "## Scaling measured here (`bench_scaling`)",
        "",
        "1 and 2 processes in one consumer group, 4 partitions, on this 2-core VM (shared with the broker, "
        "Redis and the producer: what the cores allow, not what a second machine would add).",
        "",
        "| Workers | 1 process /s | 2 processes /s | × one |",
        "|---|---|---|---|",
    ]
    for name, rates in measured.items():
        lines.append(f"| {name} | {rates['1']:,.0f} | {rates['2']:,.0f} | {rates['2'] / rates['1']:.2f}× |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measured", type=Path, default=Path(".cache/capacity"), help="where the benchmarks' JSON is")
    parser.add_argument("--out", type=Path, default=Path("docs/capacity.md"))
    args = parser.parse_args()
    measured = _measured(args.measured)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    args.out.write_text(render(measured, record_sizes(), commit or "unknown", args.measured))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
