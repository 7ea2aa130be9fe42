"""The registry keeps reward models and sticker bundles apart: each kind has its own folder and
current pointer, and refuses an artifact of the other kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tastemaker.training.lifecycle.registry import REGISTRY_KIND, STICKERS_KIND, Registry, RegistryError
from tests.support.models import engagement_logistic


def test_kinds_have_their_own_folders_and_refuse_each_others_artifacts(tmp_path: Path) -> None:
    artifact = engagement_logistic(tmp_path / "model", "m1", 1.0)
    rewards, stickers = Registry(tmp_path / "r"), Registry(tmp_path / "r", STICKERS_KIND)
    assert rewards.kind == REGISTRY_KIND and rewards.home != stickers.home
    rewards.register(artifact)
    rewards.promote("m1")
    assert rewards.current() == "m1" and stickers.current() is None
    with pytest.raises(RegistryError, match="not a loadable stickers"):
        stickers.register(artifact)
    with pytest.raises(RegistryError, match="unknown kind"):
        Registry(tmp_path / "r", "embeddings")
