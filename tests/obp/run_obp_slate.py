"""Runs inside the Open Bandit Pipeline venv (`make obp-venv`): OBP 0.5.7's slate estimators on
one-level slates written by the parity test.

    .venv-obp/bin/python tests/obp/run_obp_slate.py IN.npz OUT.json

IN.npz holds, per (slate, position) row (n_slates * len_list,): slate_id, action, position, reward,
pscore (joint), pscore_item_position, pscore_cascade and their evaluation_policy_* forms; and
q_hat and evaluation_policy_action_dist (n_slates * len_list * n_actions,).
"""

import argparse
import json

import numpy as np
from obp.ope import (
    SelfNormalizedSlateIndependentIPS,
    SelfNormalizedSlateRewardInteractionIPS,
    SelfNormalizedSlateStandardIPS,
    SlateCascadeDoublyRobust,
    SlateIndependentIPS,
    SlateRewardInteractionIPS,
    SlateStandardIPS,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs")
    parser.add_argument("output")
    args = parser.parse_args()
    d = np.load(args.inputs)
    len_list, n_actions = int(d["len_list"]), int(d["n_actions"])
    common = {"slate_id": d["slate_id"], "reward": d["reward"], "position": d["position"]}
    standard = {**common, "pscore": d["pscore"], "evaluation_policy_pscore": d["evaluation_policy_pscore"]}
    independent = {
        **common,
        "pscore_item_position": d["pscore_item_position"],
        "evaluation_policy_pscore_item_position": d["evaluation_policy_pscore_item_position"],
    }
    cascade = {
        **common,
        "pscore_cascade": d["pscore_cascade"],
        "evaluation_policy_pscore_cascade": d["evaluation_policy_pscore_cascade"],
    }
    out = {
        "standard-ipw": SlateStandardIPS(len_list=len_list).estimate_policy_value(**standard),
        "standard-snipw": SelfNormalizedSlateStandardIPS(len_list=len_list).estimate_policy_value(**standard),
        "independent-ipw": SlateIndependentIPS(len_list=len_list).estimate_policy_value(**independent),
        "independent-snipw": SelfNormalizedSlateIndependentIPS(len_list=len_list).estimate_policy_value(**independent),
        "rips": SlateRewardInteractionIPS(len_list=len_list).estimate_policy_value(**cascade),
        "rips-sn": SelfNormalizedSlateRewardInteractionIPS(len_list=len_list).estimate_policy_value(**cascade),
        "cascade-dr": SlateCascadeDoublyRobust(len_list=len_list, n_unique_action=n_actions).estimate_policy_value(
            **cascade,
            action=d["action"],
            q_hat=d["q_hat"],
            evaluation_policy_action_dist=d["evaluation_policy_action_dist"],
        ),
    }
    with open(args.output, "w") as handle:
        json.dump({k: float(v) for k, v in out.items()}, handle)


if __name__ == "__main__":
    main()
