"""Retraining speed and promotion latency:

- training rows/s of each reward-model kind (IPS-weighted, as `tastemaker retrain` trains) on
  simulated rewarded decisions, and the whole retrain chain's time (validate, train, gate);
- the true value (the simulator's expected clicks of greedy pages on held-out requests) of models
  trained on IPS-weighted clicks vs doubly robust targets, from the same logs;
- the time from `promote` to a serving process scoring with the new version, when it checks the
  registry once a second (the default) while serving a steady request stream;
- the loop as an operator runs it (`--demo-seconds`, 0 skips): `tastemaker up --demo --epsilon 1.0`
  serving a poor current model from a registry, then `tastemaker retrain` on its exported logs,
  with the simulator's truth for the current model and the candidate.

    make bench   # or: python -m tests.benchmarks.bench_retrain --decisions 6000
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_models import EngagementScorer
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.services.home import HomeRankingService
from tastemaker.services.model_watcher import ModelWatcher
from tastemaker.training.lifecycle.registry import Registry
from tastemaker.training.lifecycle.retrain import retrain
from tastemaker.training.modeling.reward_training import train_reward_model, training_rows
from tastemaker.v1 import records_pb2
from tests.support.fakes import FixedFeatures
from tests.support.simulated import rewarded_logs, true_value


def simulated_logs(n: int) -> list[records_pb2.RewardedDecision]:
    world, clock = SimulatedWorld(seed=3), itertools.count(1_000_000, 1000)
    service = HomeRankingService(
        features=FixedFeatures(world), catalog=world.catalog(), model=EngagementScorer(EngagementLinearModel()),
        strategy=EpsilonGreedy(0.5), publish=lambda *a: True, decisions_topic="unused",
        default_max_shelves=4, default_max_cards=4, reward_window_s=1.0, rng=np.random.default_rng(0),
        clock_ms=lambda: next(clock),
    )  # fmt: skip
    return rewarded_logs(service, world, n, users=60, context=lambda i: {"device": "ios" if i % 3 else "web"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=6000)
    parser.add_argument("--promotions", type=int, default=10)
    parser.add_argument("--demo-seconds", type=float, default=45.0)
    args = parser.parse_args()
    logs = simulated_logs(args.decisions)
    rows = len(training_rows(logs)[1])
    print(f"\nTraining on {args.decisions:,} rewarded decisions ({rows:,} shelf and card rows, IPS-weighted, clip 10)")
    print(f"{'kind':<10}{'seconds':>9}{'rows/s':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("logistic", "dnn", "gbt"):
            start = time.perf_counter()
            train_reward_model(kind, logs, Path(tmp) / kind, epochs=5, ips_clip=10.0)
            seconds = time.perf_counter() - start
            print(f"{kind:<10}{seconds:>9.1f}{rows / seconds:>10,.0f}")
        registry = Registry(Path(tmp) / "registry")
        start = time.perf_counter()
        summary = retrain(logs, registry, kind="logistic", say=lambda line: None)
        print(f"tastemaker retrain (validate, train logistic, gate on the later 30%): "
              f"{time.perf_counter() - start:.1f} s → {summary.gate['decision']}")  # fmt: skip

        targets_table(logs, Path(tmp))
        other = train_reward_model("gbt", logs[:1000], Path(tmp) / "other", version="other", epochs=1)
        registry.register(other.directory)
        serving: dict[str, object] = {}
        watcher = ModelWatcher(registry, lambda model: serving.update(model=model, at=time.monotonic()), refresh_s=1.0)
        stop = threading.Event()

        def requests() -> None:  # a steady stream: every request checks (cheaply) for a new version
            while not stop.is_set():
                watcher.maybe_swap()
                time.sleep(0.002)

        thread = threading.Thread(target=requests)
        thread.start()
        delays = []
        versions = itertools.cycle(["other", summary.version])
        for _ in range(args.promotions):
            target = next(versions)
            if registry.current() == target:
                target = next(versions)
            promoted_at = time.monotonic()
            registry.promote(target)
            while watcher.serving != target:
                time.sleep(0.001)
            delays.append(float(serving["at"]) - promoted_at)  # type: ignore[arg-type]
            time.sleep(np.random.default_rng(len(delays)).uniform(0.1, 0.9))
        stop.set()
        thread.join()
    print(f"promote → serving the new version ({args.promotions} promotions, 1 s refresh): "
          f"p50 {np.percentile(delays, 50):.2f} s, max {max(delays):.2f} s")  # fmt: skip
    if args.demo_seconds > 0:
        demo_loop(args.demo_seconds)


def targets_table(logs: list[records_pb2.RewardedDecision], tmp: Path) -> None:
    ordered = sorted(logs, key=lambda d: d.decision.served_at_ms)
    cut = int(len(ordered) * 0.7)
    train, held_out = ordered[:cut], ordered[cut:]
    world = SimulatedWorld(seed=3)
    print(f"\nTrue value of greedy pages on {len(held_out):,} held-out requests (expected clicks/page; "
          f"trained on the earlier {len(train):,}, logging ε-greedy 0.5)")  # fmt: skip
    print(f"{'model':<28}{'true value':>11}")
    print(f"{'logging policy (as shown)':<28}{logged_value(world, held_out):>11.3f}")
    print(f"{'built-in engagement model':<28}{true_value(world, 'model:builtin', held_out):>11.3f}")
    for kind in ("logistic", "gbt"):
        for targets in ("ips", "dr"):
            trained = train_reward_model(kind, train, tmp / f"{kind}-{targets}", epochs=5, ips_clip=10.0,
                                         targets=targets)  # fmt: skip
            value = true_value(world, f"model:{trained.directory}", held_out)
            print(f"{f'{kind}, {targets} targets':<28}{value:>11.3f}")


def shown_page(rewarded: records_pb2.RewardedDecision) -> list[tuple[str, list[str]]]:
    return [(s.shelf_id, [c.card_id for c in s.cards]) for s in rewarded.decision.shown]


def demo_loop(seconds: float) -> None:
    import os
    import subprocess
    import sys

    from tastemaker.records.log_files import read_export
    from tests.support.models import engagement_logistic

    cli = [sys.executable, "-m", "tastemaker.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        root, logs = Path(tmp) / "registry", Path(tmp) / "demo.parquet"
        registry = Registry(root)
        registry.register(engagement_logistic(Path(tmp) / "anti", "anti-engagement", -2.0))
        registry.promote("anti-engagement")
        env = {**os.environ, "TASTEMAKER_MODEL_REGISTRY": str(root)}
        subprocess.run([*cli, "up", "--demo", "--port", "0", "--duration", str(seconds), "--epsilon", "1.0",
                        "--reward-window-s", "2", "--export-logs", str(logs)],
                       check=True, capture_output=True, env=env)  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run([*cli, "retrain", "--registry", str(root), "--logs", str(logs), "--kind", "logistic"],
                              check=True, capture_output=True, text=True)  # fmt: skip
        took = time.perf_counter() - start
        decisions = sorted(read_export(logs), key=lambda d: d.decision.served_at_ms)
        held_out = decisions[int(len(decisions) * 0.7) :]
        world = SimulatedWorld()
        candidate = registry.current() or "?"
        print(f"\nThe loop: `up --demo --epsilon 1.0` for {seconds:.0f} s ({len(decisions):,} decisions), "
              f"then `retrain --kind logistic` ({took:.1f} s)")  # fmt: skip
        for line in done.stdout.splitlines():
            if line.startswith(("candidate ", "gate on", "promoted", "not promoted")):
                print(f"  {line}")
        values = {
            "current (anti-engagement)": true_value(world, f"model:{registry.path('anti-engagement')}", held_out),
            f"now current: {candidate}": true_value(world, f"model:{registry.path(candidate)}", held_out),
            "uniform logging": logged_value(world, held_out),
            "oracle": float(
                np.mean([world.expected_clicks(d.decision.user_id, oracle_page(world, d)) for d in held_out])
            ),
        }
        print("  true value on the held-out requests (expected clicks/page):")
        for name, value in values.items():
            print(f"    {name:<36}{value:>7.2f}")


def logged_value(world: SimulatedWorld, decisions: list[records_pb2.RewardedDecision]) -> float:
    return float(np.mean([world.expected_clicks(d.decision.user_id, shown_page(d)) for d in decisions]))


def oracle_page(world: SimulatedWorld, rewarded: records_pb2.RewardedDecision) -> list[tuple[str, list[str]]]:
    decision = rewarded.decision
    return world.oracle_page(decision.user_id, decision.max_shelves, decision.max_cards_per_shelf)


if __name__ == "__main__":
    main()
