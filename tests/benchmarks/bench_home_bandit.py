"""The home bandit on the simulator (hidden tastes that drift, position bias, ground truth known),
all policies on the same users, seeds and clock:

1. Whole pages (shelves × cards): each strategy over its model — ε-greedy and softmax over the
   user's engagement (the serving model), LinUCB and Thompson over a linear model of
   [1, log(1 + engagement), log(1 + global popularity)] learned online — against popularity
   (most-clicked first), uniform random and the oracle. Mean true value (expected clicks per page),
   the ratio to popularity and the regret to the oracle.
2. One choice per round (the top shelf), against Vowpal Wabbit `--cb_explore_adf --epsilon 0.1`
   with the same features (shelf id, log engagement, log popularity) and the same exploration
   budget: ε-greedy (ε = 0.1) over a ridge regression, LinUCB and Thompson. Ratio to VW.

    make bench   # or: python -m tests.benchmarks.bench_home_bandit --rounds 4000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import (
    Candidates,
    EpsilonGreedy,
    LinearState,
    LinUCB,
    Softmax,
    Strategy,
    Thompson,
)

ROWS, COLUMNS, USERS = 4, 4, 100


@dataclass
class History:
    """What a policy has seen: per-user and global clicks (the streaming features, in-process)."""

    world: SimulatedWorld
    user_shelf: dict[str, np.ndarray] = field(default_factory=dict)
    user_card: dict[str, np.ndarray] = field(default_factory=dict)
    shelf_clicks: np.ndarray = field(init=False)
    card_clicks: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.shelf_clicks = np.zeros(self.world.n_shelves)
        self.card_clicks = np.zeros((self.world.n_shelves, self.world.cards_per_shelf))

    def user(self, user_id: str) -> tuple[np.ndarray, np.ndarray]:
        if user_id not in self.user_shelf:
            self.user_shelf[user_id] = np.zeros(self.world.n_shelves)
            self.user_card[user_id] = np.zeros((self.world.n_shelves, self.world.cards_per_shelf))
        return self.user_shelf[user_id], self.user_card[user_id]

    def record(self, user_id: str, page: list[tuple[int, list[int]]], clicked: set[tuple[int, int]]) -> None:
        shelf, card = self.user(user_id)
        for s, c in clicked:
            shelf[s] += 1
            card[s, c] += 1
            self.shelf_clicks[s] += 1
            self.card_clicks[s, c] += 1


def _features(engagement: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(engagement)), np.log1p(engagement), np.log1p(popularity)])


PagePolicy = Callable[[str, History, np.random.Generator], list[tuple[int, list[int]]]]


def strategy_policy(make: Callable[[str], Strategy], learns: bool) -> tuple[PagePolicy, Callable[..., None]]:
    shelf_strategy, card_strategy = make("shelf"), make("card")

    def page(user_id: str, history: History, rng: np.random.Generator) -> list[tuple[int, list[int]]]:
        shelf_eng, card_eng = history.user(user_id)
        ids = tuple(str(i) for i in range(len(shelf_eng)))
        candidates = Candidates(ids, np.log1p(shelf_eng), _features(shelf_eng, history.shelf_clicks))
        out = []
        for s in shelf_strategy.sample_order(candidates, ROWS, rng):
            card_ids = tuple(str(i) for i in range(card_eng.shape[1]))
            cards = Candidates(card_ids, np.log1p(card_eng[s]), _features(card_eng[s], history.card_clicks[s]))
            out.append((int(s), [int(c) for c in card_strategy.sample_order(cards, COLUMNS, rng)]))
        return out

    def learn(
        user_id: str, history: History, page_: list[tuple[int, list[int]]], clicked: set[tuple[int, int]]
    ) -> None:
        if not learns:
            return
        shelf_eng, card_eng = history.user(user_id)
        for s, cards in page_:
            row_reward = sum((s, c) in clicked for c in cards)
            shelf_strategy.state.update(_features(shelf_eng[[s]], history.shelf_clicks[[s]]), [row_reward])  # type: ignore[attr-defined]
            x = _features(card_eng[s, cards], history.card_clicks[s, cards])
            card_strategy.state.update(x, [float((s, c) in clicked) for c in cards])  # type: ignore[attr-defined]

    return page, learn


def popularity(user_id: str, history: History, rng: np.random.Generator) -> list[tuple[int, list[int]]]:
    jitter = rng.random(history.shelf_clicks.shape) * 1e-6
    shelves = np.argsort(-(history.shelf_clicks + jitter))[:ROWS]
    out = []
    for s in shelves:
        cards = np.argsort(-(history.card_clicks[s] + rng.random(history.card_clicks.shape[1]) * 1e-6))[:COLUMNS]
        out.append((int(s), [int(c) for c in cards]))
    return out


def uniform(user_id: str, history: History, rng: np.random.Generator) -> list[tuple[int, list[int]]]:
    shelves = rng.permutation(history.world.n_shelves)[:ROWS]
    return [(int(s), [int(c) for c in rng.permutation(history.world.cards_per_shelf)[:COLUMNS]]) for s in shelves]


def run_pages(rounds: int, seed: int, drift: float, forget: float) -> None:
    world = SimulatedWorld(seed=seed, drift=drift)
    users = [f"user-{i}" for i in range(USERS)]
    schedule = np.random.default_rng(seed).integers(0, USERS, size=rounds)

    def named(s: int, cards: list[int]) -> tuple[str, list[str]]:
        return world.shelf_id(s), [world.card_id(s, c) for c in cards]

    policies: dict[str, tuple[PagePolicy, Callable[..., None]]] = {
        "popularity": (popularity, lambda *a: None),
        "uniform random": (uniform, lambda *a: None),
        "epsilon-greedy 0.1 × engagement": strategy_policy(lambda level: EpsilonGreedy(0.1), learns=False),
        "softmax T=0.5 × engagement": strategy_policy(lambda level: Softmax(0.5), learns=False),
        "linucb α=0.5 × linear": strategy_policy(
            lambda level: LinUCB(LinearState(3, forget=forget), alpha=0.5), learns=True
        ),
        "thompson × linear": strategy_policy(
            lambda level: Thompson(LinearState(3, forget=forget), scale=0.5), learns=True
        ),
    }
    oracle_value = float(np.mean([
        world.expected_clicks(users[u], world.oracle_page(users[u], ROWS, COLUMNS, t), t)
        for t, u in enumerate(schedule)
    ]))  # fmt: skip
    print(
        f"\nWhole pages: {rounds:,} requests from {USERS} users, {ROWS}×{COLUMNS} pages, "
        f"drift {drift}/round, seed {seed}"
    )
    print(f"{'policy':<34}{'clicks/page':>12}{'× popularity':>14}{'regret/page':>13}{'s':>7}")
    values = {}
    for name, (page_of, learn) in policies.items():
        rng, history, total = np.random.default_rng(seed + 1), History(world), 0.0
        start = time.perf_counter()
        for t, u in enumerate(schedule):
            user = users[u]
            page = page_of(user, history, rng)
            shown = [named(s, cards) for s, cards in page]
            total += world.expected_clicks(user, shown, t)
            clicked = {(int(c.shelf_id[-2:]), int(c.card_id[-2:])) for c in world.respond(user, shown, rng, t)}
            history.record(user, page, clicked)
            learn(user, history, page, clicked)
        values[name] = (total / rounds, time.perf_counter() - start)
    base = values["popularity"][0]
    for name, (value, seconds) in values.items():
        print(f"{name:<34}{value:>12.3f}{value / base:>13.2f}×{oracle_value - value:>13.3f}{seconds:>7.1f}")
    print(f"{'oracle (hidden tastes)':<34}{oracle_value:>12.3f}{oracle_value / base:>13.2f}×{0.0:>13.3f}")


def run_single_choice(rounds: int, seed: int, drift: float, args_forget: float = 1.0) -> dict[str, float]:
    """The top shelf only; the cards under it are the user's most engaged (a fixed rule for all)."""
    from vowpalwabbit import Workspace  # type: ignore[import-not-found]

    world = SimulatedWorld(seed=seed, drift=drift)
    users = [f"user-{i}" for i in range(USERS)]
    schedule = np.random.default_rng(seed).integers(0, USERS, size=rounds)
    n = world.n_shelves

    def features(history: History, user: str) -> np.ndarray:
        shelf_eng, _ = history.user(user)
        return np.column_stack([np.eye(n), np.log1p(shelf_eng), np.log1p(history.shelf_clicks)])

    def row(history: History, user: str, s: int) -> tuple[str, list[str]]:
        _, card_eng = history.user(user)
        cards = np.argsort(-card_eng[s], kind="stable")[:COLUMNS]
        return world.shelf_id(s), [world.card_id(s, int(c)) for c in cards]

    results = {}
    for name in ("vowpal wabbit cb_explore_adf ε=0.1", "epsilon-greedy 0.1 × ridge", "linucb α=0.1", "thompson"):
        rng, history, total = np.random.default_rng(seed + 2), History(world), 0.0
        vw = (
            Workspace(f"--cb_explore_adf --epsilon 0.1 --quiet --random_seed {seed}")
            if name.startswith("vowpal")
            else None
        )
        state = LinearState(n + 2, forget=args_forget)
        strategy: Strategy | None = None
        if name.startswith("linucb"):
            strategy = LinUCB(state, alpha=0.1)
        elif name.startswith("thompson"):
            strategy = Thompson(state, scale=0.25)
        start = time.perf_counter()
        for t, u in enumerate(schedule):
            user = users[u]
            x = features(history, user)
            lines = [f"|a shelf={s} eng:{x[s, n]:.6f} pop:{x[s, n + 1]:.6f}" for s in range(n)]
            if vw is not None:
                pmf = np.asarray(vw.predict(["shared |s bias"] + lines))
                chosen = int(rng.choice(n, p=pmf / pmf.sum()))
            elif strategy is None:  # ε-greedy over the ridge regression
                chosen = int(rng.integers(n)) if rng.random() < 0.1 else int(np.argmax(x @ state.theta()))
            else:
                ids = tuple(str(s) for s in range(n))
                chosen = int(strategy.sample_order(Candidates(ids, np.zeros(n), x), 1, rng)[0])
            shown = [row(history, user, chosen)]
            total += world.expected_clicks(user, shown, t)
            clicks = world.respond(user, shown, rng, t)
            reward = float(len(clicks))
            if vw is not None:
                labelled = list(lines)
                labelled[chosen] = f"0:{-reward}:{pmf[chosen]} {lines[chosen]}"
                vw.learn(["shared |s bias"] + labelled)
            else:
                state.update(x[[chosen]], [reward])
            history.record(user, [(chosen, [])], {(chosen, int(c.card_id[-2:])) for c in clicks})
        if vw is not None:
            vw.finish()
        results[name] = (total / rounds, time.perf_counter() - start)
    return {name: value for name, (value, _) in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4000)
    parser.add_argument("--seeds", default="7,8,9", help="comma-separated simulator seeds")
    parser.add_argument("--drift", type=float, default=0.0005, help="taste rotation per round (radians)")
    parser.add_argument("--forget", type=float, default=0.99, help="the linear models' forgetting factor γ")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    run_pages(args.rounds, seeds[0], args.drift, args.forget)
    runs = [run_single_choice(args.rounds, seed, args.drift, args.forget) for seed in seeds]
    print(f"\nTop shelf only, {args.rounds:,} rounds × seeds {seeds}, same features (shelf id, log engagement,")
    print(f"log popularity) and exploration budget (ε = 0.1); linear models forget with γ = {args.forget}")
    print(f"{'policy':<38}{'clicks/round':>13}{'× VW (mean)':>13}{'× VW (min–max)':>17}")
    vw = "vowpal wabbit cb_explore_adf ε=0.1"
    for name in runs[0]:
        ratios = [run[name] / run[vw] for run in runs]
        value = float(np.mean([run[name] for run in runs]))
        print(f"{name:<38}{value:>13.4f}{np.mean(ratios):>12.2f}×{min(ratios):>9.2f}–{max(ratios):.2f}×")


if __name__ == "__main__":
    main()
