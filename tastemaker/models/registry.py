"""The read side of the model registry: `<root>/<kind>/<version>/`, `CURRENT`, `HISTORY`.
`training.lifecycle.registry.Registry` adds registering, promotion and rollback."""

from __future__ import annotations

from pathlib import Path

#: a registry's folder of reward models: <root>/reward-model/<version>/, CURRENT, HISTORY
REGISTRY_KIND = "reward-model"
#: the folder of sticker bundles (encoder, index, catalog): <root>/stickers/<version>/, CURRENT, HISTORY
STICKERS_KIND = "stickers"


class RegistryError(ValueError):
    pass


class RegistryReader:
    """The read side of a model registry — which version is current, where a version lies — for
    serving; `training.lifecycle.registry.Registry` adds registering, promotion and rollback."""

    def __init__(self, root: Path, kind: str = REGISTRY_KIND) -> None:
        if kind not in (REGISTRY_KIND, STICKERS_KIND):
            raise RegistryError(f"unknown kind of model {kind!r}: {REGISTRY_KIND} or {STICKERS_KIND}")
        self.root = Path(root)
        self.kind = kind
        self.home = self.root / kind

    def path(self, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise RegistryError(f"{version!r} is not a version name")
        return self.home / version

    def current(self) -> str | None:
        try:
            return (self.home / "CURRENT").read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None
