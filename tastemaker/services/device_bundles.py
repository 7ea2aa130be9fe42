"""GetDeviceBundle: the device bundle (`tastemaker stickers export-device`) kept beside the sticker
bundle being served (`<bundle>/device-bundle.zip`), streamed in chunks with its version and
SHA-256 so an app keeps its copy fresh; a device that already holds the current one (`if_none_match`)
gets an empty stream. The file is read once per change (its path, size and modification time), and
checked member by member before it is served: a broken file is refused, not shipped."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tastemaker.device.bundle import DeviceBundleError, read_device_bundle
from tastemaker.services.errors import InvalidArgument
from tastemaker.stickers.checksummed import file_sha256
from tastemaker.v1 import api_pb2

#: a chunk's bytes at most (well under gRPC's 4 MiB message limit)
CHUNK_BYTES = 256 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceBundleImage:
    version: str
    sha256: str
    data: bytes


class DeviceBundles:
    """The current device bundle: `locate()` names the file (None: no sticker model served)."""

    def __init__(self, locate: Callable[[], Path | None]) -> None:
        self._locate = locate
        self._lock = threading.Lock()
        self._key: tuple[str, int, int] | None = None
        self._image: DeviceBundleImage | None = None

    def current(self) -> DeviceBundleImage | None:
        path = self._locate()
        if path is None or not path.is_file():
            return None
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key != self._key:
                try:
                    bundle = read_device_bundle(path)
                    self._image = DeviceBundleImage(bundle.version, file_sha256(path), path.read_bytes())
                except (DeviceBundleError, OSError) as exc:
                    log.error("device bundle %s not served: %s", path, exc)
                    self._image = None
                self._key = key
            return self._image


def parse_if_none_match(value: str) -> str:
    if value and not _SHA256.fullmatch(value):
        raise InvalidArgument("if_none_match", "must be a SHA-256 in lower-case hex (64 characters) or empty")
    return value


def bundle_chunks(
    image: DeviceBundleImage, if_none_match: str, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[api_pb2.DeviceBundleChunk]:
    """The bundle in order, or nothing when the device holds it already."""
    if if_none_match == image.sha256:
        return
    total = len(image.data)
    for offset in range(0, total, chunk_bytes):
        yield api_pb2.DeviceBundleChunk(
            version=image.version,
            sha256=image.sha256,
            total_bytes=total,
            offset=offset,
            data=image.data[offset : offset + chunk_bytes],
        )
