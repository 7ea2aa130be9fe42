"""A namespace's feature reader and writer side by side, for tests that write events and read
features back (serving reads through `FeatureStore`, the processor writes through `FeatureWriter`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from tastemaker.features.feature_writer import FeatureWriter
from tastemaker.features.folding import Provenance
from tastemaker.features.pseudonyms import Pseudonyms
from tastemaker.features.store import FeatureStore
from tastemaker.v1 import records_pb2


class ReadWrite:
    def __init__(
        self, client: redis.Redis, namespace: str, ttl_s: int = 30 * 24 * 3600, pseudonyms: Pseudonyms | None = None
    ) -> None:
        self.writer = FeatureWriter(client, namespace=namespace, ttl_s=ttl_s, pseudonyms=pseudonyms)
        self.reader = FeatureStore(client, namespace=namespace, pseudonyms=pseudonyms)

    def apply(self, batch: Sequence[tuple[records_pb2.UserEvent, Provenance]]) -> int:
        return self.writer.apply(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)
