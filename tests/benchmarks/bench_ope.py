"""Off-policy estimators against Open Bandit Pipeline, and the Beam engine, in one run:

- rounds/s of IPW, SNIPW and DR (reward model given) in memory on one core, tastemaker vs OBP
  0.5.7 (its own venv, `make obp-venv`) on the same arrays — ours includes deriving the target's
  propensities and q̄ from OBP's (n, n_actions, len_list) arrays, and the interval;
- Beam decisions/s over a rewarded home log (20 × 20 → 10 × 10 pages, the three default policies);
- Beam rounds/s over a generic CSV log of the same rounds (all seven estimators per policy,
  cross-fitted model included), next to the in-memory engine reading the same file: on the
  in-process FnApiRunner, and on the DaskRunner against a LocalCluster of 1 and of 2 worker
  processes (cluster start-up excluded; on 2 cores the driver and the workers share them).

    make bench            # or: python -m tests.benchmarks.bench_ope --rounds 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, like OBP's subprocess

import numpy as np  # noqa: E402

from tastemaker.training.evaluation.action_eval import evaluate_action_log  # noqa: E402
from tastemaker.training.evaluation.beam_action_ope import evaluate_action_log_with_beam  # noqa: E402
from tastemaker.training.evaluation.beam_runners import Runner, pipeline_args  # noqa: E402
from tastemaker.training.evaluation.log_readers import read_action_log  # noqa: E402
from tastemaker.training.evaluation.ope import estimator_by_name  # noqa: E402
from tests.support.obp import BanditArrays, obp_available, ours, run_obp  # noqa: E402

ESTIMATORS = ["ipw", "snipw", "dr"]


def synthetic(rounds: int, n_actions: int, len_list: int, seed: int = 0) -> BanditArrays:
    rng = np.random.default_rng(seed)
    action = rng.integers(0, n_actions, rounds)
    position = rng.integers(0, len_list, rounds)
    pscore = np.full(rounds, 1.0 / n_actions)
    logits = rng.normal(size=(1, n_actions, len_list))
    target = np.broadcast_to(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), (rounds, n_actions, len_list))
    q_hat = np.broadcast_to(rng.uniform(0, 0.2, (1, n_actions, len_list)), (rounds, n_actions, len_list))
    reward = (rng.random(rounds) < q_hat[0, action, position]).astype(float)
    return BanditArrays(action, position, reward, pscore, np.ascontiguousarray(target), np.ascontiguousarray(q_hat))


def bench_estimators(arrays: BanditArrays, repeat: int) -> None:
    n = len(arrays.action)
    theirs = run_obp(arrays, ESTIMATORS, repeat=repeat) if obp_available() else {}
    print(f"\nIn-memory estimators, {n:,} rounds, {arrays.action_dist.shape[1]} actions × "
          f"{arrays.action_dist.shape[2]} positions, one core (best of {repeat})")  # fmt: skip
    print(f"{'estimator':<10}{'tastemaker rounds/s':>22}{'OBP rounds/s':>16}{'ratio':>8}{'same value':>12}")
    for name in ESTIMATORS:
        best, value = float("inf"), float("nan")
        for _ in range(repeat):
            value, seconds = ours(estimator_by_name(name), arrays)
            best = min(best, seconds)
        mine = n / best
        if name in theirs:
            other = n / theirs[name]["seconds"]
            same = abs(value - theirs[name]["value"]) <= 1e-6 * abs(theirs[name]["value"])
            print(f"{name:<10}{mine:>22,.0f}{other:>16,.0f}{mine / other:>7.1f}×{str(same):>12}")
        else:
            print(f"{name:<10}{mine:>22,.0f}{'(no OBP venv)':>16}")


def bench_beam(
    rounds: int, n_actions: int, len_list: int, dask_workers: tuple[int, ...] = (1, 2)
) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.csv"
        action = rng.integers(0, n_actions, rounds)
        position = rng.integers(0, len_list, rounds)
        reward = (rng.random(rounds) < 0.05 + 0.01 * action).astype(int)
        with path.open("w") as out:
            out.write("action,position,reward,propensity\n")
            out.writelines(f"{a},{p},{r},{1 / n_actions}\n" for a, p, r in zip(action, position, reward, strict=True))
        estimators = ["ipw", "snipw", "dm", "dr", "sndr", "switch-dr", "dr-os"]
        start = time.perf_counter()
        memory = evaluate_action_log(
            read_action_log(path, "csv"), ["greedy"], [estimator_by_name(e) for e in estimators], "csv"
        )
        memory_s = time.perf_counter() - start
        start = time.perf_counter()
        beam = evaluate_action_log_with_beam(str(path), "csv", ["greedy"], estimators)
        beam_s = time.perf_counter() - start
        runs = [("Beam FnApiRunner", beam, beam_s)]
        for workers in dask_workers:
            with pipeline_args(Runner("dask", dask_workers=workers), []) as args:
                start = time.perf_counter()
                report = evaluate_action_log_with_beam(str(path), "csv", ["greedy"], estimators, pipeline_args=args)
                runs.append((f"Beam Dask, {workers} worker{'s' * (workers > 1)}", report, time.perf_counter() - start))
    worst = max(
        abs(b - a) / max(abs(a), 1e-300)
        for _, report, _ in runs
        for e in estimators
        for b, a in [(report["policies"]["greedy"]["estimates"][e]["value"],
                      memory["policies"]["greedy"]["estimates"][e]["value"])]
    )  # fmt: skip
    print(f"\nCSV log of {rounds:,} rounds → seven estimators for `greedy` (cross-fitted model), file read included")
    print(f"{'engine':<22}{'seconds':>10}{'rounds/s':>12}{'':>9}")
    print(f"{'memory (numpy)':<22}{memory_s:>10.1f}{rounds / memory_s:>12,.0f}")
    for name, _, seconds in runs:
        print(f"{name:<22}{seconds:>10.1f}{rounds / seconds:>12,.0f}{beam_s / seconds:>8.2f}×")
    print(f"(× : against FnApiRunner; {os.cpu_count()} cores here, shared by the driver and the workers)")
    print(f"largest relative difference between the engines' estimates: {worst:.1e}")
    rows = {"memory (numpy)": {"seconds": memory_s, "rounds_per_s": rounds / memory_s}}
    rows.update({name: {"seconds": seconds, "rounds_per_s": rounds / seconds} for name, _, seconds in runs})
    return rows


def bench_home_beam(decisions: int, dask_workers: tuple[int, ...] = (1,)) -> dict[str, dict[str, float]]:
    """Rewarded home decisions (20 × 20 candidates → 10 × 10 shown, ε-greedy logs) through the home
    pipeline — IPW and SNIPW per cell, page and cascade for the three default policies — on
    FnApiRunner and on Dask: decisions/s, each policy re-run on every page."""
    from tastemaker.bandits.simulator import SimulatedWorld
    from tastemaker.bandits.strategies import EpsilonGreedy
    from tastemaker.records.log_files import write_jsonl
    from tastemaker.training.evaluation.beam_ope import evaluate_with_beam
    from tastemaker.training.evaluation.home_policies import DEFAULT_POLICIES
    from tests.support.simulated import home_service, rewarded_logs

    world = SimulatedWorld(n_shelves=20, cards_per_shelf=20, seed=3)
    service = home_service(world, strategy=EpsilonGreedy(0.1), shelves=10, cards=10)
    logs = rewarded_logs(service, world, decisions, users=200)
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(4):  # four shards, as an export split over files
            write_jsonl(logs[i::4], Path(tmp) / f"rewarded-{i}.jsonl")
        paths = str(Path(tmp) / "rewarded-*.jsonl")
        start = time.perf_counter()
        evaluate_with_beam(paths, list(DEFAULT_POLICIES))
        rows["Beam FnApiRunner"] = {"seconds": time.perf_counter() - start}
        for workers in dask_workers:
            with pipeline_args(Runner("dask", dask_workers=workers), []) as args:
                start = time.perf_counter()
                evaluate_with_beam(paths, list(DEFAULT_POLICIES), pipeline_args=args)
                rows[f"Beam Dask, {workers} worker{'s' * (workers > 1)}"] = {"seconds": time.perf_counter() - start}
    print(f"\nRewarded home log of {decisions:,} decisions (20×20 → 10×10 pages) → IPW and SNIPW, cell, page and "
          f"cascade, for {len(DEFAULT_POLICIES)} policies")  # fmt: skip
    print(f"{'engine':<22}{'seconds':>10}{'decisions/s':>13}")
    for name, row in rows.items():
        row["decisions_per_s"] = decisions / row["seconds"]
        print(f"{name:<22}{row['seconds']:>10.1f}{row['decisions_per_s']:>13,.0f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1_000_000)
    parser.add_argument("--beam-rounds", type=int, default=1_000_000)
    parser.add_argument("--actions", type=int, default=10)
    parser.add_argument("--positions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dask-workers", type=int, nargs="*", default=[1, 2], help="Dask rows: worker processes")
    parser.add_argument(
        "--home-decisions", type=int, default=2000, help="rewarded home decisions for the home pipeline"
    )
    parser.add_argument(
        "--json", type=Path, metavar="OUT", help="also write the measured rates as JSON (for capacity.py)"
    )
    args = parser.parse_args()
    bench_estimators(synthetic(args.rounds, args.actions, args.positions), args.repeat)
    engines = bench_beam(args.beam_rounds, args.actions, args.positions, tuple(args.dask_workers))
    home = bench_home_beam(args.home_decisions, tuple(args.dask_workers))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"action_log": engines, "home": home}, indent=2))


if __name__ == "__main__":
    main()
