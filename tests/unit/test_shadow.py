"""Shadow and apprentice modes: the candidate's page is logged beside the live one with its own
propensities and never shown; an apprentice takes over only once it agrees often enough."""

from __future__ import annotations

import numpy as np
import pytest

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_models import EngagementScorer
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.services.bootstrap import reward_model_for
from tastemaker.services.config import ConfigError, Settings
from tastemaker.services.home import HomeRankingService
from tastemaker.services.requests import HomeRequest
from tastemaker.services.shadow import ShadowRunner
from tastemaker.training.evaluation.evaluate import evaluate
from tests.support.fakes import FixedFeatures

WORLD = SimulatedWorld(seed=2)


def _service(shadow: ShadowRunner) -> HomeRankingService:
    return HomeRankingService(
        features=FixedFeatures(WORLD), catalog=WORLD.catalog(), model=EngagementScorer(EngagementLinearModel()),
        strategy=EpsilonGreedy(0.2), publish=lambda *a: True, decisions_topic="unused",
        default_max_shelves=3, default_max_cards=3, reward_window_s=1.0, rng=np.random.default_rng(0),
        shadow=shadow,
    )  # fmt: skip


def test_shadow_decisions_are_logged_never_shown() -> None:
    reversed_model = EngagementScorer(EngagementLinearModel(weight=-1.0, version="reversed"))
    service = _service(ShadowRunner(reversed_model, "shadow", seed=1))
    for i in range(200):
        decision = service.rank(HomeRequest(f"user-{i % 10}", {}, (), 0, 0))
        assert decision.model_version == "engagement-linear-v1"
        assert decision.shadow.model_version == "reversed" and decision.shadow.mode == "shadow"
        assert len(decision.shadow.shown) == 3 and 0 < decision.shadow.ranking_propensity <= 1
        assert all(0 < s.propensity <= 1 for s in decision.shadow.shown)
    assert service._shadow is not None and service._shadow.agreement_rate < 0.5  # it disagrees
    assert not service._shadow.serves_candidate()


def test_an_apprentice_takes_over_only_once_it_agrees() -> None:
    same_ranking = EngagementScorer(EngagementLinearModel(weight=2.0, version="apprentice"))
    runner = ShadowRunner(same_ranking, "apprentice", agreement=0.9, window=50, seed=1)
    service = _service(runner)
    versions = [service.rank(HomeRequest(f"user-{i % 10}", {}, (), 0, 0)).model_version for i in range(120)]
    assert versions[:49] == ["engagement-linear-v1"] * 49  # the baseline serves while it learns
    assert versions[-1] == "apprentice" and runner.serves_candidate()
    reversed_runner = ShadowRunner(EngagementScorer(EngagementLinearModel(weight=-1.0, version="r")), "apprentice",
                                   agreement=0.9, window=50)  # fmt: skip
    service = _service(reversed_runner)
    assert {service.rank(HomeRequest(f"user-{i % 10}", {}, (), 0, 0)).model_version for i in range(120)} == {
        "engagement-linear-v1"
    }


def test_served_apprentice_logs_stay_evaluable() -> None:
    runner = ShadowRunner(EngagementScorer(EngagementLinearModel(weight=2.0, version="a")), "apprentice",
                          agreement=0.5, window=5)  # fmt: skip
    service = _service(runner)
    from tastemaker.v1 import records_pb2

    logs = [records_pb2.RewardedDecision(decision=service.rank(HomeRequest(f"user-{i % 10}", {}, (), 0, 0)))
            for i in range(100)]  # fmt: skip
    report = evaluate(logs, policies=["logging"])
    assert report["max_logged_propensity_error"] < 1e-9


def test_bad_shadow_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="TASTEMAKER_SHADOW_MODE"):
        Settings(shadow_mode="ghost")
    with pytest.raises(ValueError, match="shadow mode"):
        ShadowRunner(EngagementScorer(), "ghost")
    assert reward_model_for(Settings()).version == "engagement-linear-v1"
