"""A stream processor started while its Redis is down — as when a cluster URL's first seed is away
or a pod comes up before its dependencies — keeps trying (one log line per attempt, growing
pauses) instead of exiting with a traceback, and once Redis answers it processes the whole
stream, every counter equal to the recount."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tastemaker.features.topics import Topics
from tastemaker.services.bootstrap import prepare_topics, producer_for
from tastemaker.services.config import Settings
from tastemaker.services.embedded import free_port, start_redis
from tests.integration.helpers import wait_for
from tests.support.event_stream import produce_stream
from tests.support.processors import assert_exact, committed, start_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EVENTS = 3000


def test_a_processor_started_before_its_redis_catches_up_once_it_answers(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    down = settings.with_(redis_url=f"redis://127.0.0.1:{port}/0")
    prepare_topics(down)
    producer = producer_for(down, "test-patient")
    expected = produce_stream(producer, Topics(down.topic_prefix).events, EVENTS)
    producer.flush()
    producer.close()
    log = tmp_path / "processor.log"
    processor = start_processor(down, log)
    redis = None
    try:
        wait_for(lambda: log.read_text().count("cannot start yet") >= 3, timeout_s=60, what="three patient attempts")
        assert processor.poll() is None, log.read_text()
        assert "Traceback" not in log.read_text()
        redis = start_redis(port=port, log_dir=tmp_path)
        wait_for(lambda: committed(down) == EVENTS, timeout_s=120, what="the stream processed once Redis answered")
        assert_exact(down, expected)
    finally:
        processor.send_signal(signal.SIGTERM)
        processor.wait(30)
        if redis is not None:
            redis.stop()
    attempts = [line for line in log.read_text().splitlines() if "cannot start yet" in line]
    assert "attempt 1" in attempts[0] and "ConnectionError" in attempts[0], attempts[:2]
