"""Runs inside the Open Bandit Pipeline venv (`make obp-venv`): OBP's estimates, and its time per
call, on arrays written by the parity test or the benchmark.

    .venv-obp/bin/python tests/obp/run_obp.py IN.npz OUT.json [--repeat N]

IN.npz holds action, position, reward, pscore (n,), action_dist and q_hat (n, n_actions, len_list).
"""

import argparse
import json
import time

import numpy as np
from obp.ope import (
    DirectMethod,
    DoublyRobust,
    DoublyRobustWithShrinkage,
    InverseProbabilityWeighting,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    SwitchDoublyRobust,
)

ESTIMATORS = {
    "ipw": InverseProbabilityWeighting(),
    "snipw": SelfNormalizedInverseProbabilityWeighting(),
    "dm": DirectMethod(),
    "dr": DoublyRobust(),
    "sndr": SelfNormalizedDoublyRobust(),
    "switch-dr": SwitchDoublyRobust(lambda_=100.0),
    "dr-os": DoublyRobustWithShrinkage(lambda_=100.0),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs")
    parser.add_argument("output")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    args = parser.parse_args()
    data = np.load(args.inputs)
    kwargs = {
        "reward": data["reward"],
        "action": data["action"],
        "position": data["position"],
        "pscore": data["pscore"],
        "action_dist": data["action_dist"],
        "estimated_rewards_by_reg_model": data["q_hat"],
    }
    out = {}
    for name in args.estimators.split(","):
        estimator = ESTIMATORS[name]
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            value = estimator.estimate_policy_value(**kwargs)
            best = min(best, time.perf_counter() - start)
        out[name] = {"value": float(value), "seconds": best}
    with open(args.output, "w") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main()
