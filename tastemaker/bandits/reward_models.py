"""Reward models as the ranker serves them, swappable by configuration (`TASTEMAKER_REWARD_MODEL`:
empty for the built-in engagement-linear model, or a directory written by
`tastemaker train reward-model`).

An artifact directory holds `manifest.json` (format, kind, version, the feature columns, the
SHA-256 of every other file) and the weights: `weights.npz` (numpy arrays, loaded without pickle)
for `logistic` and `dnn` (trained in TensorFlow, served here in numpy) and `banditnet` (a policy
learned directly from the logs, `training/modeling/policy_learning.py`), or `ydf/` for `gbt`
(gradient-boosted trees trained and served by YDF). Serving never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_features import WIDTH, encode, feature_names
from tastemaker.optional import require

FORMAT = "tastemaker.reward-model/1"
KINDS = ("logistic", "dnn", "gbt", "banditnet")


class RewardModel(Protocol):
    @property
    def version(self) -> str: ...

    def score_level(
        self,
        level: str,
        counts: np.ndarray,
        ids: Sequence[str],
        engagement: np.ndarray,
        context: Mapping[str, str] | None = None,
    ) -> np.ndarray:
        """Scores (higher is better) of one request's candidates at one level (shelf or card)."""
        ...


@dataclass(frozen=True)
class EngagementScorer:
    """The built-in model: weight · log(1 + engagement) + bias, whatever the level."""

    model: EngagementLinearModel = EngagementLinearModel()

    @property
    def version(self) -> str:
        return self.model.version

    def score_level(
        self,
        level: str,
        counts: np.ndarray,
        ids: Sequence[str],
        engagement: np.ndarray,
        context: Mapping[str, str] | None = None,
    ) -> np.ndarray:
        return self.model.score(engagement)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class _EncodedScorer:
    """Scores through `reward_features.encode` and the subclass's `predict`."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score_level(
        self,
        level: str,
        counts: np.ndarray,
        ids: Sequence[str],
        engagement: np.ndarray,
        context: Mapping[str, str] | None = None,
    ) -> np.ndarray:
        return self.predict(encode(counts, engagement, ids, level, context))


@dataclass(frozen=True)
class DenseModel(_EncodedScorer):
    """Logistic regression (one layer) or an MLP with ReLU hidden layers, in numpy: P(click)."""

    version: str
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    def predict(self, x: np.ndarray) -> np.ndarray:
        h = x
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return _sigmoid(h[:, 0])


@dataclass(frozen=True)
class TreesModel(_EncodedScorer):
    """Gradient-boosted trees served by YDF's own inference: P(click)."""

    version: str
    model: Any

    def predict(self, x: np.ndarray) -> np.ndarray:
        return trees_click_probability(
            self.model, {name: x[:, i].astype(np.float32) for i, name in enumerate(feature_names())}
        )


def trees_click_probability(model: Any, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """A YDF model's P(click): a classifier's probability of the "click" class, or a regression
    on doubly robust targets (`--targets dr`) clipped into [0, 1]."""
    p = np.asarray(model.predict(dict(columns)), dtype=np.float64).reshape(-1)
    if model.task().name == "REGRESSION":
        return np.clip(p, 0.0, 1.0)
    # YDF gives P(the second label class) for binary tasks; the labels are "click" and "none"
    return p if list(model.label_classes())[1] == "click" else 1.0 - p


class ArtifactError(ValueError):
    pass


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path.parent)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def write_manifest(directory: Path, kind: str, version: str, extra: Mapping[str, Any]) -> None:
    files = {p.name: file_digest(p) for p in sorted(directory.iterdir()) if p.name != "manifest.json"}
    manifest = {
        "format": FORMAT,
        "kind": kind,
        "version": version,
        "features": feature_names(),
        "sha256": files,
        **extra,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def load_reward_model(directory: Path) -> RewardModel:
    """Load an artifact, refusing one whose files do not match their checksums."""
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: no readable manifest.json ({exc})") from exc
    if manifest.get("format") != FORMAT or manifest.get("kind") not in KINDS:
        raise ArtifactError(f"{directory}: not a reward-model artifact of format {FORMAT}")
    if manifest.get("features") != feature_names():
        raise ArtifactError(f"{directory}: trained on other feature columns than this version encodes")
    for name, expected in manifest.get("sha256", {}).items():
        path = directory / name
        if not path.exists() or file_digest(path) != expected:
            raise ArtifactError(f"{directory}: {name} does not match its checksum (changed or truncated)")
    version = str(manifest["version"])
    if manifest["kind"] == "gbt":
        ydf = require("ydf", "ml", "serving a gbt reward model")
        ydf.verbose(0)  # no "Loading model from ..." on every load
        return TreesModel(version, ydf.load_model(str(directory / "ydf")))
    with np.load(directory / "weights.npz", allow_pickle=False) as weights:
        count = len(weights.files) // 2
        layers = tuple((weights[f"w{i}"], weights[f"b{i}"]) for i in range(count))
    if not layers or layers[0][0].shape[0] != WIDTH:
        raise ArtifactError(f"{directory}: weights do not fit {WIDTH} input columns")
    return DenseModel(version, layers)


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
