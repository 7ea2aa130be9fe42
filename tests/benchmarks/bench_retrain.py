"""Retraining speed and promotion latency:

- training rows/s of each reward-model kind (IPS-weighted, as `tastemaker retrain` trains) on
  simulated rewarded decisions, and the whole retrain chain's time (validate, train, gate);
- the time from `promote` to a serving process scoring with the new version, when it checks the
  registry once a second (the default) while serving a steady request stream.

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
from tastemaker.bandits.epsilon_greedy import EpsilonGreedyRanker
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.services.home import HomeRankingService
from tastemaker.training.registry import ModelWatcher, Registry
from tastemaker.training.retrain import retrain
from tastemaker.training.reward_training import train_reward_model, training_rows
from tastemaker.v1 import records_pb2
from tests.support.simulated import rewarded_logs
from tests.unit.test_evaluate import FixedFeatures


def simulated_logs(n: int) -> list[records_pb2.RewardedDecision]:
    world, clock = SimulatedWorld(seed=3), itertools.count(1_000_000, 1000)
    service = HomeRankingService(
        features=FixedFeatures(world), catalog=world.catalog(), model=EngagementLinearModel(),
        ranker=EpsilonGreedyRanker(0.5), publish=lambda *a: True, decisions_topic="unused",
        default_max_shelves=4, default_max_cards=4, reward_window_s=1.0, rng=np.random.default_rng(0),
        clock_ms=lambda: next(clock),
    )  # fmt: skip
    return rewarded_logs(service, world, n, users=60, context=lambda i: {"device": "ios" if i % 3 else "web"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=6000)
    parser.add_argument("--promotions", type=int, default=10)
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


if __name__ == "__main__":
    main()
