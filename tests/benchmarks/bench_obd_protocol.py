"""The Open Bandit Dataset's standard protocol on the shipped sample (campaign "all"): estimate
the uniform-random policy's click rate from the Bernoulli-TS log, and Bernoulli-TS's (its action
distribution per position reconstructed from its own log) from the random log; compare each with
the other log's on-policy click rate. Prints the README's table.

    python -m tests.benchmarks.bench_obd_protocol [--obd-dir ../shared/datasets/obd]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tastemaker.training.action_eval import evaluate_action_log
from tastemaker.training.log_readers import read_action_log
from tastemaker.training.ope import ESTIMATORS, estimator_by_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obd-dir", type=Path, default=Path(__file__).resolve().parents[3] / "shared/datasets/obd")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
