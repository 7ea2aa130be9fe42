"""The model registry: versioned reward-model artifacts and sticker bundles in a directory (local
or a shared mount), a current pointer per kind, and the history of promotions for rollback.

    <root>/reward-model/<version>/    an artifact (manifest.json, weights.npz or ydf/)
    <root>/reward-model/CURRENT       the current version's name (replaced atomically)
    <root>/reward-model/HISTORY       one JSON line per promotion or rollback
    <root>/stickers/<version>/        a sticker bundle (encoder/, index/, catalog.jsonl, manifest.json)
    <root>/stickers/CURRENT, HISTORY  the same for sticker bundles

Serving processes follow CURRENT (`services.model_watcher.ModelWatcher`): they load a new version off the request path
and swap one reference, so a request is scored wholly by one version and none fails.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tastemaker.models.artifacts import ArtifactError, load_reward_model
from tastemaker.models.registry import REGISTRY_KIND, STICKERS_KIND, RegistryError, RegistryReader

__all__ = ["REGISTRY_KIND", "STICKERS_KIND", "Entry", "Registry", "RegistryError"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    version: str
    manifest: dict[str, Any]
    current: bool


class Registry(RegistryReader):
    """The registry's write side: register, promote, roll back (serving reads it: `RegistryReader`)."""

    def check(self, artifact: Path) -> None:
        """Raise RegistryError unless `artifact` would serve (a reward model or a sticker bundle,
        by this registry's kind)."""
        try:
            if self.kind == STICKERS_KIND:
                from tastemaker.stickers.bundle import load_bundle

                load_bundle(artifact)
            else:
                load_reward_model(artifact)
        except (ArtifactError, OSError, ValueError) as exc:
            raise RegistryError(f"{artifact}: not a loadable {self.kind} ({exc})") from exc

    def register(self, artifact: Path, manifest_updates: dict[str, Any] | None = None) -> str:
        """Copy an artifact into the registry under its manifest's version; returns the version."""
        self.check(artifact)  # refuse anything that would not serve
        try:
            manifest = json.loads((artifact / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{artifact}: not a loadable artifact ({exc})") from exc
        version = str(manifest["version"])
        target = self.path(version)
        if target.exists():
            raise RegistryError(f"version {version} is already registered")
        self.home.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.home))
        shutil.copytree(artifact, staging, dirs_exist_ok=True)
        if manifest_updates:
            manifest.update(manifest_updates)
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(staging, target)
        return version

    def update_manifest(self, version: str, updates: dict[str, Any]) -> None:
        path = self.path(version) / "manifest.json"
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest.update(updates)
        _atomic_write(path, json.dumps(manifest, indent=2))

    def manifest(self, version: str) -> dict[str, Any]:
        try:
            return dict(json.loads((self.path(version) / "manifest.json").read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise RegistryError(f"no version {version!r} in {self.home}") from None

    def versions(self) -> list[Entry]:
        current = self.current()
        if not self.home.is_dir():
            return []
        out = []
        for path in sorted(self.home.iterdir()):
            if path.is_dir() and not path.name.startswith("."):
                manifest = self.manifest(path.name)
                out.append(Entry(path.name, manifest, path.name == current))
        return sorted(out, key=lambda e: str(e.manifest.get("registered_at", "")))

    def promote(self, version: str, reason: str = "manual") -> None:
        self.manifest(version)  # exists
        self.check(self.path(version))  # and serves
        previous = self.current()
        _atomic_write(self.home / "CURRENT", version + "\n")
        self._history({"action": "promote", "version": version, "previous": previous, "reason": reason})

    def rollback(self) -> str:
        """Back to the version that was current before the current one; returns it."""
        history = self.history()
        current = self.current()
        for entry in reversed(history):
            if entry.get("version") == current and entry.get("previous"):
                previous = str(entry["previous"])
                _atomic_write(self.home / "CURRENT", previous + "\n")
                self._history({"action": "rollback", "version": previous, "previous": current, "reason": "rollback"})
                return previous
        raise RegistryError("nothing to roll back to: the current version has no predecessor")

    def history(self) -> list[dict[str, Any]]:
        try:
            lines = (self.home / "HISTORY").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def _history(self, entry: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "HISTORY").open("a", encoding="utf-8") as out:
            out.write(json.dumps({**entry, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)
