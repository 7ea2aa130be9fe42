"""The Open Bandit Dataset's standard protocol on the shipped sample (campaign "all"): estimate
the uniform-random policy's click rate from the Bernoulli-TS log, and Bernoulli-TS's (its action
distribution per position reconstructed from its own log) from the random log; compare each with
the other log's on-policy click rate. Prints the README's table.

Then a policy learned from the uniform-random log: the click rate per (item, position), smoothed
toward the position's, fitted on the earlier half of the log (by time); the greedy policy over it
is evaluated on the later half (IPS and SNIPS with 95% intervals) next to the logged policies'
on-policy click rates.

    python -m tests.benchmarks.bench_obd_protocol [--obd-dir DIR]   (default: TASTEMAKER_OBD_DIR)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from tastemaker.training.evaluation.action_eval import evaluate_action_log
from tastemaker.training.evaluation.action_log import ActionLog, fold_table, slot_data
from tastemaker.training.evaluation.log_readers import read_action_log
from tastemaker.training.evaluation.ope import ESTIMATORS, IPW, SNIPW, estimator_by_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obd-dir", type=Path, default=os.environ.get("TASTEMAKER_OBD_DIR") or None)
    args = parser.parse_args()
    if args.obd_dir is None:
        print("no Open Bandit Dataset: set TASTEMAKER_OBD_DIR or pass --obd-dir; skipping")
        return
    bts_path, random_path = args.obd_dir / "bts/all/all.csv", args.obd_dir / "random/all/all.csv"
    if not bts_path.is_file():
        print(f"no Open Bandit Dataset at {args.obd_dir}; skipping")
        return
    bts, random_log = read_action_log(bts_path, "obd"), read_action_log(random_path, "obd")
    estimators = [estimator_by_name(n) for n in ESTIMATORS]
    forward = evaluate_action_log(bts, ["uniform-random"], estimators, "obd")["policies"]["uniform-random"]
    policy = f"empirical:{bts_path}"
    reverse = evaluate_action_log(random_log, [policy], estimators, "obd")["policies"][policy]
    t1, t2 = random_log.reward.mean(), bts.reward.mean()
    print(f"| estimator | random from BTS log (truth {t1:.4f}) | rel. error "
          f"| BTS from random log (truth {t2:.4f}) | rel. error |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name in ESTIMATORS:
        x, y = forward["estimates"][name], reverse["estimates"][name]
        print(
            f"| {name} | {x['value']:.4f} [{x['lower']:.4f}, {x['upper']:.4f}] | {abs(x['value'] - t1) / t1:.2f} "
            f"| {y['value']:.4f} [{y['lower']:.4f}, {y['upper']:.4f}] | {abs(y['value'] - t2) / t2:.2f} |"
        )
    learned_policy(random_log, bts)


def learned_policy(random_log: ActionLog, bts: ActionLog) -> None:
    order = np.argsort(
        random_log.timestamp_ms if random_log.timestamp_ms is not None else np.arange(random_log.n_rounds)
    )
    early, late = order[: len(order) // 2], order[len(order) // 2 :]
    rewards = np.zeros((random_log.n_actions, random_log.len_list))
    shows = np.zeros_like(rewards)
    np.add.at(rewards, (random_log.action[early], random_log.position[early]), random_log.reward[early])
    np.add.at(shows, (random_log.action[early], random_log.position[early]), 1.0)
    table = fold_table(rewards, shows)
    test = slot_data(ActionLog(random_log.action[late], random_log.position[late], random_log.reward[late],
                               random_log.propensity[late], random_log.n_actions, random_log.len_list))  # fmt: skip
    ranked = np.argsort(-table, axis=0)  # items by fitted click rate, per position
    print("\nPolicies learned from the uniform-random log (uniform over the top-k items per position by click")
    print("rate fitted on its earlier half), evaluated on the later half, vs the logged policies' click rates")
    print(f"{'policy':<34}{'estimator':<10}{'click rate':>11}  95% interval")
    for k in (1, 10, 20):
        chosen = np.zeros_like(table, dtype=bool)
        np.put_along_axis(chosen, ranked[:k], True, axis=0)
        target = (chosen[random_log.action[late], random_log.position[late]] / k)[:, None]
        for estimator in (IPW(), SNIPW()):
            e = estimator.estimate(test, target)
            name = f"learned top-{k}"
            print(f"{name:<34}{e.estimator:<10}{e.value:>11.4f}  [{e.lower:.4f}, {e.upper:.4f}]")
    print(f"{'uniform random (later half)':<34}{'on-policy':<10}{random_log.reward[late].mean():>11.4f}")
    print(f"{'Bernoulli TS (its own log)':<34}{'on-policy':<10}{bts.reward.mean():>11.4f}")


if __name__ == "__main__":
    main()
