"""Serving follows the model registry's current version: a reward model, or a sticker bundle."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tastemaker.models.artifacts import ArtifactError, load_reward_model
from tastemaker.models.registry import RegistryError, RegistryReader

log = logging.getLogger(__name__)


class ModelWatcher:
    """Follows a registry's CURRENT: `maybe_swap()` (cheap, at most every `refresh_s`) loads a new
    current version with `load` and hands it to `on_swap`; a version that fails to load is logged
    and skipped, and the last good model keeps serving. `poll_in_background()` calls it from a
    thread instead of the request path (for models that take seconds to load)."""

    def __init__(
        self,
        registry: RegistryReader,
        on_swap: Any,
        refresh_s: float = 1.0,
        load: Callable[[Path], Any] = load_reward_model,
        errors: tuple[type[BaseException], ...] = (ArtifactError, RegistryError, OSError),
        serving: str | None = None,
    ) -> None:
        self.registry = registry
        self._load = load
        self._errors = errors
        self.refresh_s = refresh_s
        self._on_swap = on_swap
        #: the version being served (`serving`: one the caller loaded already)
        self._serving: str | None = serving
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
                model = self._load(self.registry.path(current))
            except self._errors as exc:
                self._failed = current
                log.error("cannot serve %s %s, keeping %s: %s", self.registry.kind, current, self._serving, exc)
                return
            self._on_swap(model)
            log.info("serving %s %s (was %s)", self.registry.kind, current, self._serving)
            self._serving, self._failed = current, None
            self.swaps += 1
        finally:
            self._lock.release()

    def poll_in_background(self, stop: threading.Event) -> threading.Thread:
        """Check every `refresh_s` in a daemon thread until `stop` is set."""

        def run() -> None:
            while not stop.is_set():
                try:
                    self.maybe_swap()
                except Exception:  # a watcher that dies silently would leave a stale model serving
                    log.exception("checking the %s registry failed; trying again", self.registry.kind)
                stop.wait(self.refresh_s)

        thread = threading.Thread(target=run, name=f"{self.registry.kind}-watcher", daemon=True)
        thread.start()
        return thread
