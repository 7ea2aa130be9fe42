"""A reward-model artifact directory: `manifest.json` (format, kind, version, feature columns, the
SHA-256 of every other file) beside its weights; written by training, loaded (checksums verified)
by serving, the gate and evaluation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.bandits.reward_features import WIDTH, feature_names
from tastemaker.bandits.reward_models import FORMAT, KINDS, DenseModel, FactorizationMachine, RewardModel, TreesModel
from tastemaker.optional import require


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


def _columns(names: Any) -> np.ndarray | None:
    """Where the artifact's feature columns sit in today's encoding: None when they are today's;
    empty when one of them is not encoded any more (the artifact cannot be served)."""
    current = feature_names()
    if names == current:
        return None
    index = {name: i for i, name in enumerate(current)}
    if not isinstance(names, list) or not names or any(name not in index for name in names):
        return np.zeros(0, dtype=int)
    return np.array([index[name] for name in names], dtype=int)


def load_reward_model(directory: Path) -> RewardModel:
    """Load an artifact, refusing one whose files do not match their checksums."""
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: no readable manifest.json ({exc})") from exc
    if manifest.get("format") != FORMAT or manifest.get("kind") not in KINDS:
        raise ArtifactError(f"{directory}: not a reward-model artifact of format {FORMAT}")
    columns = _columns(manifest.get("features"))
    if columns is not None and not len(columns):
        raise ArtifactError(f"{directory}: trained on other feature columns than this version encodes")
    for name, expected in manifest.get("sha256", {}).items():
        path = directory / name
        if not path.exists() or file_digest(path) != expected:
            raise ArtifactError(f"{directory}: {name} does not match its checksum (changed or truncated)")
    version = str(manifest["version"])
    width = WIDTH if columns is None else len(columns)
    if manifest["kind"] == "gbt":
        ydf = require("ydf", "ml", "serving a gbt reward model")
        ydf.verbose(0)  # no "Loading model from ..." on every load
        return TreesModel(version, ydf.load_model(str(directory / "ydf")), columns)
    if manifest["kind"] == "fm":
        with np.load(directory / "weights.npz", allow_pickle=False) as weights:
            w0, w, v = float(weights["w0"]), weights["w"], weights["v"]
        if w.shape != (width,) or v.ndim != 2 or v.shape[0] != width:
            raise ArtifactError(f"{directory}: weights do not fit {width} input columns")
        return FactorizationMachine(version, w0, w, v, columns)
    with np.load(directory / "weights.npz", allow_pickle=False) as weights:
        count = len(weights.files) // 2
        layers = tuple((weights[f"w{i}"], weights[f"b{i}"]) for i in range(count))
    if not layers or layers[0][0].shape[0] != width:
        raise ArtifactError(f"{directory}: weights do not fit {width} input columns")
    return DenseModel(version, layers, columns)
