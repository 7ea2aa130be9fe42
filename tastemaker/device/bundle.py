"""The device bundle: one file an app downloads and answers from offline (`tastemaker stickers
export-device` writes it, `GetDeviceBundle` serves it, `DeviceSuggester` reads it).

A zip archive (the JSON members deflated, the arrays stored: they are quantised already) of

    manifest.json        format, version, the tokeniser spec, the parts' shapes and quantisation,
                         the exploration, and every other member's SHA-256 and size
    encoder.tflite       the message tower as a LiteRT flatbuffer: compact feature rows (int32,
                         (1, MAX_FEATURES), 0 = padding) → a unit vector (1, e)
    encoder_rows.npy     a bit per hash bucket (packed): the features the encoder kept; the k-th kept
                         bucket is compact row k (1-based)
    stickers.npy         (n, e) int8 sticker vectors, stickers_scale.npy (n,) float32 their row scales
    stickers.json        the n sticker ids, packs and languages, in row order
    head_rows.npy        (F,) int32: the chat head's rows kept; head_codes.npy (F, L/4) uint8 over
                         head_book.npy (L/4, 256, 4) float32, their weights product-quantised;
                         head_bias.npy, head_prior.npy (L,) float32; head.json its labels — only
                         when the server bundle has a head
    prefixes.json        typeahead: a word prefix → its likeliest whole word

Every member is checked against the manifest's SHA-256 on load: a changed or truncated bundle is
refused with the member named. No TensorFlow and nothing server-side is needed to read it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.stickers.checksummed import file_sha256

FORMAT = "tastemaker.device-bundle/1"
#: what the registry calls a device bundle
KIND = "stickers-device"


class DeviceBundleError(ValueError):
    """A file that is not a device bundle this runtime can read (the message says why)."""


@dataclass(frozen=True)
class DeviceBundleFile:
    """A bundle's raw parts as read from its file: the manifest and each member's bytes, checked."""

    manifest: dict[str, Any]
    members: dict[str, bytes]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def array(self, name: str) -> np.ndarray:
        return np.load(io.BytesIO(self.members[name]), allow_pickle=False)

    def json(self, name: str) -> Any:
        return json.loads(self.members[name].decode("utf-8"))


def array_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def write_device_bundle(path: Path, manifest: Mapping[str, Any], members: Mapping[str, bytes]) -> str:
    """Write the bundle atomically (a temporary file renamed into place); returns the file's SHA-256.
    The manifest gains `format` and each member's `sha256` and `bytes`."""
    listed = {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)} for name, data in members.items()}
    full = {**manifest, "format": FORMAT, "members": listed}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("manifest.json", json.dumps(full, indent=1, ensure_ascii=False))
        for name, data in members.items():
            # JSON compresses; the arrays are quantised already and are stored as they are
            kind = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
            archive.writestr(name, data, compress_type=kind)
    partial.replace(path)
    return file_sha256(path)


def read_device_bundle(path: Path) -> DeviceBundleFile:
    """The bundle at `path`, every member checked; `DeviceBundleError` naming what is wrong."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("manifest.json").decode("utf-8"))
            if manifest.get("format") != FORMAT:
                raise DeviceBundleError(f"{path}: not a device bundle of format {FORMAT} ({manifest.get('format')!r})")
            members = {name: archive.read(name) for name in manifest.get("members", {})}
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeviceBundleError(f"{path}: not a readable device bundle ({exc})") from exc
    for name, listed in manifest["members"].items():
        if hashlib.sha256(members[name]).hexdigest() != listed.get("sha256"):
            raise DeviceBundleError(f"{path}: member {name} does not match its checksum")
    return DeviceBundleFile(manifest, members)
