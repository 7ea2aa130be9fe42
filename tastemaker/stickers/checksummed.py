"""Arrays on disk as a model part keeps them: `<name>.npz` beside a `manifest.json` that names the
format and holds the file's SHA-256, checked on load (a changed or truncated file is refused)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np


def save_arrays(directory: Path, name: str, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> None:
    """Write `<name>.npz` and `manifest.json` (`manifest` plus the file's `sha256`)."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / f"{name}.npz", **arrays)  # type: ignore[arg-type]
    digest = hashlib.sha256((directory / f"{name}.npz").read_bytes()).hexdigest()
    text = json.dumps({**manifest, "sha256": digest}, indent=1, ensure_ascii=False)
    (directory / "manifest.json").write_text(text, encoding="utf-8")


def load_arrays(
    directory: Path, name: str, fmt: str, what: str, error: type[ValueError]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(manifest, arrays) of a part saved by `save_arrays` in format `fmt`; `error("… not a
    <what> …")` when the files are missing, of another format or do not match their checksum."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        raw = (directory / f"{name}.npz").read_bytes()
    except (OSError, ValueError) as exc:
        raise error(f"{directory}: not a {what} ({exc})") from exc
    if manifest.get("format") != fmt:
        raise error(f"{directory}: not a {what} of format {fmt}")
    if hashlib.sha256(raw).hexdigest() != manifest.get("sha256"):
        raise error(f"{directory}: {name}.npz does not match its checksum")
    with np.load(directory / f"{name}.npz", allow_pickle=False) as arrays:
        return manifest, {key: arrays[key] for key in arrays.files}
