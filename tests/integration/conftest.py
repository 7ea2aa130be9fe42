"""A serving process in this test process, on a real port, against the real broker and Redis."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from tastemaker.services.bootstrap import Serving, build_serving, prepare_topics
from tastemaker.services.config import Settings


@pytest.fixture
def serving(settings: Settings) -> Iterator[Serving]:
    prepare_topics(settings)
    serving = build_serving(settings, seed=0)
    serving.server.start()
    try:
        yield serving
    finally:
        serving.stop(grace_s=1)


@pytest.fixture
def channel(serving: Serving) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
        yield channel
