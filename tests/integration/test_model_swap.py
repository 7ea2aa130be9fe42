"""Promote and rollback under continuous RankHome load: every request succeeds, each is scored by
exactly one model version, and the serving processes follow the registry within seconds."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_models import EngagementScorer
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.services.bootstrap import build_serving, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.services.home import HomeRankingService
from tastemaker.training.lifecycle.registry import Registry
from tastemaker.training.modeling.reward_training import train_reward_model
from tastemaker.v1 import api_pb2, api_pb2_grpc
from tests.support.fakes import FixedFeatures
from tests.support.simulated import rewarded_logs

pytestmark = pytest.mark.integration


def _two_versions(root: Path) -> Registry:
    world = SimulatedWorld(seed=1)
    service = HomeRankingService(
        features=FixedFeatures(world), catalog=world.catalog(), model=EngagementScorer(EngagementLinearModel()),
        strategy=EpsilonGreedy(0.5), publish=lambda *a: True, decisions_topic="unused",
        default_max_shelves=4, default_max_cards=4, reward_window_s=1.0, rng=np.random.default_rng(0),
    )  # fmt: skip
    logs = rewarded_logs(service, world, 300, users=20)
    registry = Registry(root)
    for kind in ("logistic", "gbt"):
        registry.register(train_reward_model(kind, logs, root.parent / f"artifact-{kind}", version=f"v-{kind}",
                                             epochs=1).directory)  # fmt: skip
    registry.promote("v-logistic")
    return registry


def test_promote_and_rollback_under_load_fail_no_request(settings: Settings, tmp_path: Path) -> None:
    registry = _two_versions(tmp_path / "registry")
    settings = settings.with_(grpc_port=0, model_registry=str(registry.root), model_refresh_s=0.2)
    prepare_topics(settings)
    serving = build_serving(settings, seed=0)
    serving.server.start()
    stop, failures, versions = threading.Event(), [], []
    lock = threading.Lock()

    def load() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            rank = api_pb2_grpc.HomeRankingStub(channel).RankHome
            while not stop.is_set():
                try:
                    response = rank(api_pb2.RankHomeRequest(user_id="u1", max_shelves=3), timeout=5)
                    with lock:
                        versions.append((time.monotonic(), response.model_version))
                except grpc.RpcError as exc:
                    with lock:
                        failures.append(exc.code())

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        switches = []
        for target in ("v-gbt", None, "v-gbt", None):  # None: rollback
            time.sleep(1.0)
            if target is None:
                target = registry.rollback()
            else:
                registry.promote(target)
            switched_at = time.monotonic()
            deadline = switched_at + 10
            while time.monotonic() < deadline:
                with lock:
                    if versions and versions[-1][1] == target:
                        break
                time.sleep(0.05)
            with lock:
                assert versions[-1][1] == target, f"serving did not switch to {target}"
            switches.append(time.monotonic() - switched_at)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        serving.stop(grace_s=1)
    assert not failures, f"{len(failures)} requests failed: {failures[:3]}"
    seen = {v for _, v in versions}
    assert seen == {"v-logistic", "v-gbt"} and len(versions) > 100
    assert max(switches) < 3.0  # within the refresh interval, plus loading
