"""Serving follows the model registry's current version, off the request path."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from tastemaker.bandits.reward_models import (
    ArtifactError,
    RegistryError,
    RegistryReader,
    RewardModel,
    load_reward_model,
)

log = logging.getLogger(__name__)


class ModelWatcher:
    """Follows a registry's CURRENT: `maybe_swap()` (cheap, at most every `refresh_s`) loads a new
    current version and hands it to `on_swap`; a version that fails to load is logged and skipped,
    and the last good model keeps serving."""

    def __init__(self, registry: RegistryReader, on_swap: Any, refresh_s: float = 1.0) -> None:
        self.registry = registry
        self.refresh_s = refresh_s
        self._on_swap = on_swap
        self._serving: str | None = None
        self._failed: str | None = None
        self._last = 0.0
        self._lock = threading.Lock()
        self.swaps = 0

    @property
    def serving(self) -> str | None:
        return self._serving

    def maybe_swap(self) -> None:
        now = time.monotonic()
        if now - self._last < self.refresh_s or not self._lock.acquire(blocking=False):
            return
        try:
            self._last = now
            current = self.registry.current()
            if current is None or current == self._serving or current == self._failed:
                return
            try:
                model: RewardModel = load_reward_model(self.registry.path(current))
            except (ArtifactError, RegistryError, OSError) as exc:
                self._failed = current
                log.error("cannot serve reward model %s, keeping %s: %s", current, self._serving, exc)
                return
            self._on_swap(model)
            log.info("serving reward model %s (was %s)", current, self._serving)
            self._serving, self._failed = current, None
            self.swaps += 1
        finally:
            self._lock.release()
