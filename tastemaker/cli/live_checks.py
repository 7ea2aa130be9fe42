"""Builds the live propensity self-check (`training.lifecycle.propensity_watch`) from the settings:
a consumer of tastemaker.decisions in its own group, so it sees every decision without taking
any from the joiner."""

from __future__ import annotations

from tastemaker.features.topics import Topics
from tastemaker.messaging import make_consumer
from tastemaker.services.bootstrap import consumer_group, kafka_security_of
from tastemaker.services.config import Settings
from tastemaker.training.lifecycle.propensity_watch import LIVE_ALPHA, PropensityWatch


def build_propensity_watch(
    settings: Settings,
    interval_s: float = 30.0,
    window: int = 5000,
    replay_sample: int = 500,
    alpha: float = LIVE_ALPHA,
) -> PropensityWatch:
    consumer = make_consumer(
        settings.kafka_client,
        settings.kafka_bootstrap,
        [Topics(settings.topic_prefix).decisions],
        consumer_group(settings, "propensity-check"),
        "tastemaker-propensity-check",
        kafka_security_of(settings),
    )
    return PropensityWatch(consumer, window=window, interval_s=interval_s, replay_sample=replay_sample, alpha=alpha)
