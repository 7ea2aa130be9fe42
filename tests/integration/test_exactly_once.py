"""Exactly-once effect of the stream processor, with real processes killed by SIGKILL, on one Redis
and on a Redis Cluster."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tastemaker.features.redis_connect import connect
from tastemaker.features.topics import Topics
from tastemaker.messaging import group_lag, make_producer
from tastemaker.services.bootstrap import consumer_group, prepare_topics
from tastemaker.services.config import Settings
from tests.support.event_stream import Expected, produce_stream
from tests.support.processors import N_EVENTS, assert_exact, start_processor, wait_until_drained

pytestmark = pytest.mark.integration


@pytest.fixture
def stream(any_settings: Settings) -> Expected:
    settings = any_settings
    prepare_topics(settings)
    producer = make_producer("confluent", settings.kafka_bootstrap)
    expected = produce_stream(producer, Topics(settings.topic_prefix).events, N_EVENTS, malformed_share=0.01, seed=3)
    producer.close()
    assert 800 < len(expected.malformed) < 1200
    return expected


def test_sigkill_at_five_random_points_then_restart(any_settings: Settings, stream: Expected, tmp_path: Path) -> None:
    settings = any_settings
    rng = random.Random(11)
    log = tmp_path / "processor.log"
    group, topic = consumer_group(settings, "features"), Topics(settings.topic_prefix).events
    progress = []
    # kill at random points of the stream, whatever this machine's speed: once the committed work
    # passes a random share of it, plus a random fraction of a batch cycle
    for target in sorted(rng.uniform(0.05, 0.85) * N_EVENTS for _ in range(5)):
        processor = start_processor(settings, log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and processor.poll() is None:
            if sum(group_lag(settings.kafka_bootstrap, group, topic)["committed"].values()) >= target:
                break
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 0.3))
        processor.kill()  # SIGKILL: no handler, no commit, no clean leave
        processor.wait()
        progress.append(sum(group_lag(settings.kafka_bootstrap, group, topic)["committed"].values()))
    # the kills landed mid-stream: work had been committed and work remained
    assert sum(0 < done < N_EVENTS for done in progress) >= 3, progress
    processor = start_processor(settings, log)
    try:
        wait_until_drained(settings)
    finally:
        processor.terminate()
        processor.wait(30)
    assert_exact(settings, stream)


def test_two_processes_in_one_group_one_killed_mid_stream(
    any_settings: Settings, stream: Expected, tmp_path: Path
) -> None:
    settings = any_settings
    survivor = start_processor(settings, tmp_path / "survivor.log")
    victim = start_processor(settings, tmp_path / "victim.log")
    try:
        status = connect(settings.redis_url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status.hlen(f"{settings.redis_namespace}:processors") < 2:
            time.sleep(0.5)  # both have joined and published their first status
        time.sleep(3.0)
        victim.kill()
        victim.wait()
        wait_until_drained(settings)
    finally:
        for process in (survivor, victim):
            if process.poll() is None:
                process.terminate()
                process.wait(30)
    assert_exact(settings, stream)
