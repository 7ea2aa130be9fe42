"""The contextual-bandit bake-off (Bietti, Agarwal & Langford, "A Contextual Bandit Bake-off",
JMLR 2021) on the multiclass data sets scikit-learn ships inside its package: each example is a
context, each class an action, reward 1 for the true class and 0 otherwise, one pass in a shuffled
order per seed, and the progressive-validation reward (the mean reward of the actions actually
chosen, each chosen before its example is learned from).

Every policy sees the same features: the example's standardised features shared by every action
and the action's id, crossed (VW: `-q sa`; ours: one ridge regression per action, the same model
as the crossed features' block-diagonal one). Vowpal Wabbit's `--cb_explore_adf` runs with
ε-greedy (ε = 0.05), SquareCB (its defaults: γ = 10·√t) and bagging (5 bags); ours are
Tastemaker's strategies over `LinearState`: ε-greedy (ε = 0.05), SquareCB (γ = 10·√t), LinUCB
(α = 0.5) and Thompson (posterior scale 0.25).

Standardising uses each data set's own mean and spread (the same transform for every policy; the
protocol's own preprocessing scales features too). The labels are only ever read as rewards.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tastemaker.bandits import epsilon_greedy, inverse_gap
from tastemaker.bandits.strategies import LinearState

DATASETS = ("digits", "wine", "breast_cancer", "iris")
VW_CONFIGS = {
    "vw ε-greedy 0.05": "--epsilon 0.05",
    "vw squarecb": "--squarecb",
    "vw bag 5": "--bag 5",
}
OURS = ("ε-greedy 0.05", "squarecb", "linucb α=0.5", "thompson")


@dataclass(frozen=True)
class Problem:
    name: str
    x: np.ndarray  # (n, d) standardised
    y: np.ndarray  # (n,) class index
    actions: int


def load(name: str) -> Problem:
    from sklearn import datasets  # type: ignore[import-untyped]

    data = getattr(datasets, f"load_{name}")()
    x = np.asarray(data.data, dtype=np.float64)
    spread = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    y = np.asarray(data.target, dtype=int)
    return Problem(name, x, y, int(y.max()) + 1)


class PerAction:
    """One ridge regression per action over [1, x]: the crossed features' model, block by block."""

    def __init__(self, dim: int, actions: int) -> None:
        self.states = [LinearState(dim + 1) for _ in range(actions)]

    @staticmethod
    def row(x: np.ndarray) -> np.ndarray:
        return np.concatenate([[1.0], x])

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = self.row(x)
        return np.array([z @ s.theta() for s in self.states])

    def width(self, x: np.ndarray) -> np.ndarray:
        z = self.row(x)
        return np.array([math.sqrt(z @ np.linalg.solve(s.a, z)) for s in self.states])

    def learn(self, x: np.ndarray, action: int, reward: float) -> None:
        self.states[action].update(self.row(x)[None, :], np.array([reward]))


def ours(name: str, problem: Problem, seed: int) -> float:
    rng = np.random.default_rng(seed)
    order = np.random.default_rng(seed).permutation(len(problem.y))
    model = PerAction(problem.x.shape[1], problem.actions)
    total = 0.0
    for t, i in enumerate(order, start=1):
        x = problem.x[i]
        if name.startswith("ε-greedy"):
            action = int(epsilon_greedy.sample_order(model.predict(x), 1, 0.05, rng)[0])
        elif name == "squarecb":
            action = int(inverse_gap.sample_order(model.predict(x), 1, 10.0 * math.sqrt(t), rng)[0])
        elif name.startswith("linucb"):
            action = int(epsilon_greedy.sample_greedy(model.predict(x) + 0.5 * model.width(x), 1, rng)[0])
        else:  # thompson: one posterior draw per action
            draws = []
            for s in model.states:
                z = model.row(x)
                mean = z @ s.theta()
                draws.append(mean + 0.25 * math.sqrt(z @ np.linalg.solve(s.a, z)) * rng.standard_normal())
            action = int(np.argmax(draws))
        reward = float(action == problem.y[i])
        total += reward
        model.learn(x, action, reward)
    return total / len(order)


def vowpal(flags: str, problem: Problem, seed: int) -> float:
    from vowpalwabbit import Workspace  # type: ignore[import-not-found]

    rng = np.random.default_rng(seed)
    order = np.random.default_rng(seed).permutation(len(problem.y))
    vw = Workspace(f"--cb_explore_adf {flags} -q sa --quiet --random_seed {seed}")
    actions = [f"|a a{k}" for k in range(problem.actions)]
    total = 0.0
    for i in order:
        shared = "shared |s " + " ".join(f"f{j}:{v:.6f}" for j, v in enumerate(problem.x[i]))
        pmf = np.asarray(vw.predict([shared] + actions))
        action = int(rng.choice(problem.actions, p=pmf / pmf.sum()))
        reward = float(action == problem.y[i])
        total += reward
        labelled = list(actions)
        labelled[action] = f"0:{-reward}:{pmf[action]} {actions[action]}"
        vw.learn([shared] + labelled)
    vw.finish()
    return total / len(order)


def run(seeds: list[int], datasets: tuple[str, ...] = DATASETS, progress: Callable[[str], None] = print) -> dict:
    """{data set: {policy: [progressive reward per seed]}}, printed as a table."""
    results: dict[str, dict[str, list[float]]] = {}
    for name in datasets:
        problem = load(name)
        table: dict[str, list[float]] = {}
        for policy, flags in VW_CONFIGS.items():
            table[policy] = [vowpal(flags, problem, seed) for seed in seeds]
        for policy in OURS:
            table[policy] = [ours(policy, problem, seed) for seed in seeds]
        results[name] = table
    progress(
        f"\nBake-off (Bietti, Agarwal & Langford 2021 protocol): progressive-validation reward, one pass, "
        f"seeds {seeds}; features crossed with the action for every policy"
    )
    policies = list(VW_CONFIGS) + list(OURS)
    progress(f"{'data set':<15}{'n':>6}{'K':>4}" + "".join(f"{p:>18}" for p in policies) + f"{'ours − VW best':>16}")
    wins = 0
    for name, table in results.items():
        problem = load(name)
        means = {p: float(np.mean(v)) for p, v in table.items()}
        vw_best = max(means[p] for p in VW_CONFIGS)
        our_best = max(means[p] for p in OURS)
        wins += our_best >= vw_best
        cells = "".join(f"{means[p]:>11.3f} ±{np.std(table[p]) / math.sqrt(len(seeds)):.3f}" for p in policies)
        progress(f"{name:<15}{len(problem.y):>6}{problem.actions:>4}{cells}{our_best - vw_best:>+16.3f}")
    progress(
        f"our best strategy ≥ VW's best configuration on {wins} of {len(results)} data sets (± one standard error)"
    )
    return results
