"""Arrays on disk as a model part keeps them: `<name>.npz` beside a `manifest.json` that names the
format and holds the file's SHA-256, checked on load (a changed or truncated file is refused).

The large tables go to their own `<key>.npy` files (`mapped`), checked the same way and then
memory-mapped read-only: every serving worker on a machine shares one copy in the page cache
instead of holding its own (`serve --workers N`), and only the rows requests touch are read."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def file_sha256(path: Path) -> str:
    """A file's SHA-256 in hex, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_arrays(
    directory: Path,
    name: str,
    arrays: dict[str, np.ndarray],
    manifest: dict[str, Any],
    mapped: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Write `<name>.npz`, each of `mapped` as `<key>.npy`, and `manifest.json` (`manifest` plus
    the files' `sha256` and `mapped` {key: sha256})."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / f"{name}.npz", **arrays)  # type: ignore[arg-type]
    digests = {}
    for key, array in (mapped or {}).items():
        np.save(directory / f"{key}.npy", np.ascontiguousarray(array), allow_pickle=False)
        digests[key] = file_sha256(directory / f"{key}.npy")
    full = {**manifest, "sha256": file_sha256(directory / f"{name}.npz")} | ({"mapped": digests} if digests else {})
    (directory / "manifest.json").write_text(json.dumps(full, indent=1, ensure_ascii=False), encoding="utf-8")


def load_arrays(
    directory: Path, name: str, fmt: str, what: str, error: type[ValueError]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(manifest, arrays) of a part saved by `save_arrays` in format `fmt` (its `mapped` arrays
    memory-mapped read-only); `error("… not a <what> …")` when the files are missing, of another
    format or do not match their checksum."""
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
        out = {key: arrays[key] for key in arrays.files}
    for key, expected in manifest.get("mapped", {}).items():
        path = directory / f"{key}.npy"
        try:
            if file_sha256(path) != expected:
                raise error(f"{directory}: {key}.npy does not match its checksum")
            out[key] = np.load(path, mmap_mode="r", allow_pickle=False)
        except OSError as exc:
            raise error(f"{directory}: not a {what} ({exc})") from exc
    return manifest, out
