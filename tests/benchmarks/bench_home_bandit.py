"""The home bandit on the simulator (hidden tastes that drift, position bias, ground truth known),
all policies on the same users, seeds and clock:

1. Whole pages (shelves × cards): each strategy over its model — ε-greedy and softmax over the
   user's engagement (the serving model), LinUCB and Thompson over a linear model of
   [1, log(1 + engagement), log(1 + global popularity)] learned online — against popularity
   (most-clicked first), uniform random and the oracle. Mean true value (expected clicks per page),
   the ratio to popularity and the regret to the oracle.
2. Whole pages in the richer world (`SimulatedWorld(context_strength=0.5, explanations=…)`:
   tastes that move with the hour and device, and each user looking at a row or not by the
   explanation it is shown under): the linear strategies over today's features, then over
   `OnlineFeatures` (context crossed with the candidate and with its content embedding, the user's
   taste profile crossed with it), with one explanation for everyone (the best on average, known
   to the bench), chosen as RankHome chooses it (a term per explanation, crossed with the context)
   or chosen per user (a term per user and explanation); against popularity,
   uniform random and two oracles (hidden tastes with the best single explanation, and with each
   user's own best: their ratio is the most choosing per user can give).
3. One choice per round (the top shelf), against Vowpal Wabbit `--cb_explore_adf --epsilon 0.1`
   with the same features (shelf id, log engagement, log popularity) and the same exploration
   budget: ε-greedy (ε = 0.1) over a ridge regression, LinUCB and Thompson. Ratio to VW.
4. The contextual-bandit bake-off on scikit-learn's bundled data sets (`bakeoff.py`).

    make bench   # or: python -m tests.benchmarks.bench_home_bandit --rounds 4000
    python -m tests.benchmarks.bench_home_bandit --sections rich   # one table
    python -m tests.benchmarks.bench_home_bandit --sections bakeoff   # the bake-off (`bakeoff.py`)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tastemaker.bandits.online_features import OnlineFeatures
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
from tests.benchmarks import bakeoff

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


EXPLANATIONS = ("because-you-played", "popular-near-you", "new-release")


@dataclass
class RichHistory:
    """Per-user streaming features of the richer world: engagement per shelf and card, a taste
    profile (the mean content embedding of what the user clicked), rows and clicks per explanation;
    global clicks (popularity)."""

    world: SimulatedWorld
    users: list[str]

    def __post_init__(self) -> None:
        w, e = self.world, len(self.world.explanations)
        self.shelf = {u: np.zeros(w.n_shelves) for u in self.users}
        self.card = {u: np.zeros((w.n_shelves, w.cards_per_shelf)) for u in self.users}
        self.profile = {u: np.zeros(w.dim) for u in self.users}
        self.explained_rows = {u: np.zeros(e) for u in self.users}
        self.explained_clicks = {u: np.zeros(e) for u in self.users}
        self.shelf_clicks = np.zeros(w.n_shelves)
        self.card_clicks = np.zeros((w.n_shelves, w.cards_per_shelf))
        #: each card's content embedding (its own and its shelf's vector: what a catalog's embedding knows)
        self.embedding = w.card_vectors + w.shelf_vectors[:, None, :]

    def user_features(self, user: str) -> dict[str, float]:
        clicks = self.shelf[user].sum()
        return {f"taste{j}": float(v) / (1.0 + clicks) for j, v in enumerate(self.profile[user])}

    def record(
        self, user: str, page: list[tuple[int, list[int]]], said: list[int], clicked: set[tuple[int, int]]
    ) -> None:
        for (s, cards), e in zip(page, said, strict=True):
            self.explained_rows[user][e] += 1
            self.explained_clicks[user][e] += sum((s, c) in clicked for c in cards)
        for s, c in clicked:
            self.shelf[user][s] += 1
            self.card[user][s, c] += 1
            self.shelf_clicks[s] += 1
            self.card_clicks[s, c] += 1
            self.profile[user] += self.embedding[s, c]


RichPage = tuple[list[tuple[int, list[int]]], list[int]]


class RichLinear:
    """Linear strategies on a shelf, a card and (per user) an explanation level. `features`:
    "today" ([1, log engagement, log popularity]), "context" (`OnlineFeatures` without the user's
    profile) or "context+user"; `explain`: "global" (the best explanation on average, for everyone)
    "served" (as RankHome chooses: a LinUCB with a term per explanation, crossed with the context) or
    "per-user" (a LinUCB over each (user, explanation) with its own term, as items have)."""

    def __init__(self, make: Callable[[int], Strategy], features: str, explain: str, width: int) -> None:
        self.encoder = OnlineFeatures(width)
        self.features, self.explain = features, explain
        dim = 3 if features == "today" else self.encoder.dim
        self.shelf, self.card = make(dim), make(dim)
        self.explainer = LinUCB(LinearState(self.encoder.dim), alpha=0.5)  # per-user terms: no forgetting
        #: per shown row: (shelf, its cards, the shelf's x, the cards' x, the explanation's x and key)
        self.pending: list[tuple[int, list[int], np.ndarray, np.ndarray, np.ndarray | None, str]] = []

    def _x(self, history: RichHistory, user: str, level: str, ids: tuple[str, ...], engagement: np.ndarray,
           embedding: np.ndarray, popularity: np.ndarray, context: dict[str, str]) -> np.ndarray:  # fmt: skip
        if self.features == "today":
            return _features(engagement, popularity)
        own = [
            dict({f"e{j}": float(v) for j, v in enumerate(vector)}, popularity=float(np.log1p(p)))
            for vector, p in zip(embedding, popularity, strict=True)
        ]
        user_features = history.user_features(user) if self.features == "context+user" else None
        return self.encoder.encode(level, ids, engagement, context, own, user_features)

    def page(self, user: str, history: RichHistory, context: dict[str, str], rng: np.random.Generator) -> RichPage:
        world = history.world
        shelf_ids = tuple(world.shelf_id(s) for s in range(world.n_shelves))
        xs = self._x(history, user, "shelf", shelf_ids, history.shelf[user], world.shelf_vectors,
                     history.shelf_clicks, context)  # fmt: skip
        shelves = self.shelf.sample_order(Candidates(shelf_ids, np.zeros(len(shelf_ids)), xs), ROWS, rng)
        page, said = [], []
        self.pending = []
        theta = self.shelf.state.theta()  # type: ignore[attr-defined]
        for row, s in enumerate(shelves):
            card_ids = tuple(world.card_id(s, c) for c in range(world.cards_per_shelf))
            xc = self._x(history, user, "card", card_ids, history.card[user][s], history.embedding[s],
                         history.card_clicks[s], context)  # fmt: skip
            cards = self.card.sample_order(Candidates(card_ids, np.zeros(len(card_ids)), xc), COLUMNS, rng)
            e, xe, key = 0, None, ""
            if self.explain == "served":  # as RankHome does: a term per explanation, crossed with the context
                xe = self.encoder.encode("explanation", EXPLANATIONS, np.zeros(len(EXPLANATIONS)), context,
                                         [{} for _ in EXPLANATIONS], None, EXPLANATIONS)  # fmt: skip
                e = int(
                    self.explainer.sample_order(Candidates(EXPLANATIONS, np.zeros(len(EXPLANATIONS)), xe), 1, rng)[0]
                )
                xe, key = xe[[e]], EXPLANATIONS[e]
            if self.explain == "per-user":
                rows, clicks = history.explained_rows[user], history.explained_clicks[user]
                rates = {
                    f"rate:{name}": float((clicks[i] + 0.5) / (rows[i] + 1.0)) for i, name in enumerate(EXPLANATIONS)
                }
                own = [
                    {f"is:{name}": 1.0, f"row{row}": 1.0, "shelf_value": float(xs[s] @ theta)} for name in EXPLANATIONS
                ]
                xe = self.encoder.encode("explanation", EXPLANATIONS, clicks, context, own, rates, EXPLANATIONS)
                keys = tuple(f"{user}|{name}" for name in EXPLANATIONS)
                e = int(self.explainer.sample_order(Candidates(keys, np.zeros(len(keys)), xe), 1, rng)[0])
                xe, key = xe[[e]], keys[e]
            shown = [int(c) for c in cards]
            self.pending.append((int(s), shown, xs[[s]], xc[shown], xe, key))
            page.append((int(s), shown))
            said.append(e)
        return page, said

    def learn(self, page: RichPage, clicked: set[tuple[int, int]]) -> None:
        for s, cards, xs, xc, xe, key in self.pending:
            hits = [float((s, c) in clicked) for c in cards]
            self.shelf.state.update(xs, [sum(hits)])  # type: ignore[attr-defined]
            self.card.state.update(xc, hits)  # type: ignore[attr-defined]
            if xe is not None:
                self.explainer.state.update(xe, [sum(hits)], [key])


def run_rich_pages(rounds: int, seed: int, drift: float, width: int) -> dict[str, float]:
    world = SimulatedWorld(seed=seed, drift=drift, context_strength=0.5, explanations=EXPLANATIONS)
    users = [f"user-{i}" for i in range(USERS)]
    clock = np.random.default_rng(seed)
    schedule = clock.integers(0, USERS, size=rounds)
    contexts = [world.sample_context(clock) for _ in range(rounds)]

    def linucb(dim: int) -> Strategy:
        return LinUCB(LinearState(dim, forget=0.999), alpha=0.5)

    def thompson(dim: int) -> Strategy:
        return Thompson(LinearState(dim, forget=0.999), scale=0.5, n_samples=200)

    def fixed(rule: Callable[[str, RichHistory, np.random.Generator], list[tuple[int, list[int]]]], random_said: bool):
        def page(user: str, history: RichHistory, context: dict[str, str], rng: np.random.Generator) -> RichPage:
            shown = rule(user, history, rng)  # type: ignore[arg-type]
            said = [int(rng.integers(len(EXPLANATIONS))) if random_said else 0 for _ in shown]
            return shown, said

        return page, (lambda *a: None)

    def scored(strategy: Strategy):  # type: ignore[no-untyped-def]
        """A strategy over the serving model's scores (log engagement), the best explanation for all."""

        def page(user: str, history: RichHistory, context: dict[str, str], rng: np.random.Generator) -> RichPage:
            world, shelf_eng, card_eng = history.world, history.shelf[user], history.card[user]
            ids = tuple(str(i) for i in range(world.n_shelves))
            out = []
            for s in strategy.sample_order(Candidates(ids, np.log1p(shelf_eng)), ROWS, rng):
                cards = Candidates(tuple(str(i) for i in range(world.cards_per_shelf)), np.log1p(card_eng[s]))
                out.append((int(s), [int(c) for c in strategy.sample_order(cards, COLUMNS, rng)]))
            return out, [0] * len(out)

        return page, (lambda *a: None)

    def learner(make: Callable[[int], Strategy], features: str, explain: str):
        policy = RichLinear(make, features, explain, width)
        return policy.page, policy.learn

    policies = {
        "popularity": fixed(popularity, False),
        "uniform random": fixed(uniform, True),
        "epsilon-greedy 0.1 × engagement model": scored(EpsilonGreedy(0.1)),
        "softmax T=0.5 × engagement model": scored(Softmax(0.5)),
        "linucb × today's features": learner(linucb, "today", "global"),
        "linucb × context": learner(linucb, "context", "global"),
        "linucb × context+user": learner(linucb, "context+user", "global"),
        "linucb × context+user, served expl.": learner(linucb, "context+user", "served"),
        "linucb × context+user, per-user expl.": learner(linucb, "context+user", "per-user"),
        "thompson × context+user, per-user expl.": learner(thompson, "context+user", "per-user"),
    }
    # EXPLANATIONS[0] has the largest mean effect (`SimulatedWorld.explanation_effect`): the best for everyone
    oracle_one = oracle_own = 0.0
    for t, u in enumerate(schedule):
        best = world.oracle_page(users[u], ROWS, COLUMNS, t, contexts[t])
        oracle_one += world.expected_clicks(users[u], best, t, contexts[t], [EXPLANATIONS[0]] * len(best))
        oracle_own += world.expected_clicks(
            users[u], best, t, contexts[t], [world.best_explanation(users[u])] * len(best)
        )
    oracle_one, oracle_own = oracle_one / rounds, oracle_own / rounds
    print(
        f"\nRicher world: {rounds:,} requests, {USERS} users, {ROWS}×{COLUMNS} pages, context (hour, device) "
        f"strength 0.5, explanations {EXPLANATIONS}, seed {seed}; OnlineFeatures width {width}"
    )
    print(f"{'policy':<42}{'clicks/page':>12}{'× popularity':>14}{'× oracle':>10}{'s':>7}")
    values: dict[str, float] = {}
    for name, (page_of, learn) in policies.items():
        rng, history, total = np.random.default_rng(seed + 1), RichHistory(world, users), 0.0
        start = time.perf_counter()
        for t, u in enumerate(schedule):
            user, context = users[u], contexts[t]
            page, said = page_of(user, history, context, rng)
            shown = [(world.shelf_id(s), [world.card_id(s, c) for c in cards]) for s, cards in page]
            names = [EXPLANATIONS[e] for e in said]
            total += world.expected_clicks(user, shown, t, context, names)
            clicks = world.respond(user, shown, rng, t, context, names)
            clicked = {(int(c.shelf_id[-2:]), int(c.card_id[-2:])) for c in clicks}
            learn((page, said), clicked)
            history.record(user, page, said, clicked)
        values[name] = total / rounds
        seconds = time.perf_counter() - start
        print(f"{name:<42}{values[name]:>12.3f}{values[name] / values['popularity']:>13.2f}×"
              f"{values[name] / oracle_own:>9.2f}×{seconds:>7.1f}")  # fmt: skip
    base = values["popularity"]
    for name, value in (("oracle, best single explanation", oracle_one), ("oracle, each user's own", oracle_own)):
        print(f"{name:<42}{value:>12.3f}{value / base:>13.2f}×{value / oracle_own:>9.2f}×")
    per_user = values["linucb × context+user, per-user expl."] / values["linucb × context+user"]
    print(
        f"choosing the explanation per user: {per_user:.3f}× one for everyone (linucb × context+user); "
        f"the oracles' ratio, the most it can give: {oracle_own / oracle_one:.3f}×"
    )
    values["oracle"] = oracle_own
    values["oracle, one explanation"] = oracle_one
    return values


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
    parser.add_argument("--width", type=int, default=62, help="OnlineFeatures' hashed width (richer world)")
    parser.add_argument(
        "--sections", default="pages,rich,top-shelf,bakeoff", help="comma-separated: pages, rich, top-shelf, bakeoff"
    )
    parser.add_argument("--bakeoff-seeds", default="1,2,3,4,5", help="comma-separated shuffles per bake-off data set")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    sections = set(args.sections.split(","))
    if "pages" in sections:
        run_pages(args.rounds, seeds[0], args.drift, args.forget)
    if "rich" in sections:
        run_rich_pages(args.rounds, seeds[0], args.drift, args.width)
    if "bakeoff" in sections:
        bakeoff.run([int(s) for s in args.bakeoff_seeds.split(",")])
    if "top-shelf" not in sections:
        return
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
