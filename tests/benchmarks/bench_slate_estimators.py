"""Page estimators on the simulator, against the truth: bias, standard deviation, RMSE and the
coverage of their 95% intervals, for the per-cell (independent), whole-page (standard slate) and
page-prefix (reward-interaction, `cascade-*`) IPS and their self-normalised forms, the per-cell DR
and the cascade DR on the two-level pages (a cross-fitted per-cell reward model under both).

Each replication logs `--decisions` home pages from ε-greedy (`--epsilon`) over the simulated
world's 8 shelves × 12 cards (4 × 4 shown), clicks drawn from its click model, and estimates the
greedy policy's expected clicks per page; the truth is the simulator's expected clicks of the
greedy pages for the same requests (`tests/support/simulated.true_value`).

    make bench            # or: python -m tests.benchmarks.bench_slate_estimators --replications 40
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.training.evaluation.evaluate import evaluate
from tastemaker.training.evaluation.ope import DR, IPW, SNIPW
from tests.support.simulated import home_service, rewarded_logs, true_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replications", type=int, default=40)
    parser.add_argument("--decisions", type=int, default=400)
    parser.add_argument("--epsilon", type=float, default=0.3)
    args = parser.parse_args()
    world = SimulatedWorld(seed=3)
    estimates: dict[str, list[tuple[float, float, float]]] = {}
    truths = []
    start = time.perf_counter()
    for r in range(args.replications):
        service = home_service(world, strategy=EpsilonGreedy(args.epsilon), seed=100 + r)
        logs = rewarded_logs(service, world, args.decisions, seed=200 + r)
        truth = true_value(world, "greedy", logs)
        truths.append(truth)
        report = evaluate(logs, ["greedy"], estimators=(IPW(), SNIPW(), DR()))
        for name, est in report["policies"]["greedy"]["estimates"].items():
            if est["value"] is not None:
                estimates.setdefault(name, []).append(
                    (est["value"] - truth, est["lower"] - truth, est["upper"] - truth)
                )
        print(f"\r{r + 1}/{args.replications} replications, {time.perf_counter() - start:.0f} s", end="", flush=True)
    print(
        f"\n\nGreedy's expected clicks per page from ε-greedy ({args.epsilon}) logs, {args.replications} "
        f"replications × {args.decisions} decisions; truth {np.mean(truths):.3f} on average (the simulator's)"
    )
    print(f"{'estimator':<16}{'bias':>9}{'sd':>9}{'RMSE':>9}{'95% covers':>12}")
    for name, rows in estimates.items():
        errors = np.array(rows)
        bias, sd = errors[:, 0].mean(), errors[:, 0].std(ddof=1)
        covered = float(np.mean((errors[:, 1] <= 0) & (errors[:, 2] >= 0)))
        print(f"{name:<16}{bias:>9.3f}{sd:>9.3f}{np.sqrt((errors[:, 0] ** 2).mean()):>9.3f}{covered:>12.0%}")


if __name__ == "__main__":
    main()
