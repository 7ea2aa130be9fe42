"""The feature store and stream processor against real Redis and the real broker."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
import redis

from tastemaker.features import keys
from tastemaker.features.events import decode_event
from tastemaker.features.folding import Provenance
from tastemaker.features.redis_connect import connect
from tastemaker.features.topics import Topics
from tastemaker.messaging.kafka_python import KafkaPythonProducer
from tastemaker.services.bootstrap import build_stream_processor, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.v1 import records_pb2
from tests.integration.helpers import wait_for
from tests.support.features import ReadWrite

pytestmark = pytest.mark.integration
DAY_MS = 24 * 3600 * 1000


def _event(user: str, event_type: str, t_ms: int, **fields: object) -> records_pb2.UserEvent:
    return records_pb2.UserEvent(event_id=uuid.uuid4().hex, user_id=user, type=event_type, event_time_ms=t_ms, **fields)


@pytest.fixture
def store(any_settings: Settings) -> ReadWrite:
    """A store on one Redis, then on the Redis Cluster: every test taking it runs on both."""
    return ReadWrite(connect(any_settings.redis_url), namespace=any_settings.redis_namespace)


def _sourced(events: list[records_pb2.UserEvent], partition: int = 0) -> list[tuple[records_pb2.UserEvent, Provenance]]:
    return [(e, Provenance("events", partition, offset)) for offset, e in enumerate(events)]


def test_redelivered_records_change_nothing(store: ReadWrite) -> None:
    events = [
        _event("dora", "card_click", 1000, shelf_id="shelf-01", item_id="c1"),
        _event("dora", "card_click", 2000, shelf_id="shelf-01", item_id="c2"),
        _event("eve", "card_click", 3000, shelf_id="shelf-02", item_id="c1"),
    ]
    batch = _sourced(events)
    assert store.apply(batch) == 3
    assert store.apply(batch) == 0  # the same offsets again: a redelivery after a crash
    assert store.apply(batch[1:]) == 0
    dora = store.read("dora", as_of_ms=2000)
    assert dora.shelf_engagement("shelf-01") == 2 and dora.event_count("card_click") == 2
    assert dora.get("events.card_click.last_ms") == 2000
    assert store.read("eve").card_engagement("c1") == 1
    assert store.read_item("c1")["item.engagement.count"] == 2


def _raw_hash(store: ReadWrite, user: str) -> dict[str, float]:
    raw = store._redis.hgetall(keys.user_features(store._namespace, user))
    return {k.decode(): float(v) for k, v in raw.items() if not k.startswith(b"~wm")}


def test_a_folded_batch_writes_what_its_events_one_at_a_time_write(settings: Settings) -> None:
    rng = np.random.default_rng(11)
    types = ["play", "skip", "card_click", "sticker_sent", "shelf_dwell"]
    events = [
        _event(
            "hal", types[i % 5], int(rng.integers(1_000_000, 9_000_000)), item_id=f"i{i % 4}", shelf_id=f"s{i % 3}",
            listened_seconds=float(rng.uniform(0, 200)), track_length_seconds=200.0,
            dwell_ms=int(rng.integers(0, 5000)),
        )
        for i in range(60)
    ]  # fmt: skip
    client = redis.Redis.from_url(settings.redis_url)
    batched = ReadWrite(client, namespace=f"{settings.redis_namespace}-batched")
    single = ReadWrite(client, namespace=f"{settings.redis_namespace}-single")
    assert batched.apply(_sourced(events)) == 60
    for offset, event in enumerate(events):
        assert single.apply([(event, Provenance("events", 0, offset))]) == 1
    folded, one_by_one = _raw_hash(batched, "hal"), _raw_hash(single, "hal")
    assert folded.keys() == one_by_one.keys()
    for name, value in one_by_one.items():
        assert folded[name] == pytest.approx(value, rel=1e-12), name
    assert batched.read("hal").get("recent.played") == single.read("hal").get("recent.played")
    assert batched.read_item("i1") == single.read_item("i1")


def test_a_redelivery_with_other_batch_boundaries_applies_only_the_new_events(store: ReadWrite) -> None:
    events = [_event("ida", "play", 1000 + i, item_id=f"t{i}") for i in range(6)]
    assert store.apply(_sourced(events)[:4]) == 4  # applied, then the processor died before committing
    before = store.writer.round_trips
    assert store.apply(_sourced(events)) == 2  # its successor's batch starts at the last commit
    assert store.writer.round_trips == before + 2  # the group the watermark cut was re-sent event by event
    ida = store.read("ida")
    assert ida.event_count("play") == 6 and ida.get("recent.played")[:2] == ["t5", "t4"]
    assert store.read_item("t3")["item.engagement.count"] == 1


def test_missing_users_and_features_read_as_typed_defaults(store: ReadWrite) -> None:
    nobody = store.read("nobody")
    assert nobody.get("events.play.count") == 0 and isinstance(nobody.get("events.play.count"), int)
    assert nobody.get("listened_seconds.sum") == 0.0 and isinstance(nobody.get("listened_seconds.sum"), float)
    assert nobody.get("recent.played") == [] and nobody.get("skip_rate") == 0.0
    assert nobody.shelf_engagement("shelf-01") == 0


def test_decayed_features_match_a_numpy_reference_with_out_of_order_events(store: ReadWrite) -> None:
    rng = np.random.default_rng(5)
    times = rng.integers(1_700_000_000_000, 1_700_000_000_000 + 30 * DAY_MS, size=300)
    listened = rng.uniform(1, 300, size=300)
    events = [
        _event(
            "fay",
            "play",
            int(t),
            item_id=f"t{i % 7}",
            shelf_id="s",
            listened_seconds=float(x),
            track_length_seconds=300.0,
        )
        for i, (t, x) in enumerate(zip(times, listened, strict=True))
    ]  # event times in random order: many arrive "late"
    for start in range(0, 300, 50):
        store.apply(_sourced(events, partition=1)[start : start + 50])
    as_of = int(times.max()) + 3 * DAY_MS
    fay = store.read("fay", as_of_ms=as_of)

    def reference(weights: np.ndarray, half_life_days: float) -> float:
        return float(np.sum(weights * 2.0 ** (-(as_of - times) / (half_life_days * DAY_MS))))

    assert fay.get("plays.decayed_7d") == pytest.approx(reference(np.ones(300), 7), rel=1e-9)
    assert fay.get("listened_seconds.decayed_1d") == pytest.approx(reference(listened, 1), rel=1e-9)
    assert fay.keyed["shelf.engagement.decayed_3d"]["s"] == pytest.approx(reference(np.ones(300), 3), rel=1e-9)
    assert fay.get("listened_seconds.sum") == pytest.approx(listened.sum(), rel=1e-12)
    assert fay.get("completion_rate") == pytest.approx(listened.sum() / 90_000.0, rel=1e-12)
    assert fay.get("events.play.last_ms") == int(times.max())
    # the recent list is the 7 distinct tracks, newest play first
    last_play = {f"t{i % 7}": int(t) for i, t in sorted(enumerate(times), key=lambda p: p[1])}
    assert fay.get("recent.played") == sorted(last_play, key=last_play.get, reverse=True)


def test_recent_items_are_bounded(store: ReadWrite) -> None:
    store.apply(_sourced([_event("gil", "play", 1000 + i, item_id=f"t{i}") for i in range(30)]))
    assert store.read("gil").get("recent.played") == [f"t{i}" for i in range(29, 9, -1)]


def test_many_users_in_one_round_trip_and_inactive_users_expire(any_settings: Settings) -> None:
    settings = any_settings  # the users' keys lie in many slots on the cluster
    client = connect(settings.redis_url)
    store = ReadWrite(client, namespace=settings.redis_namespace, ttl_s=1)
    store.apply(_sourced([_event(f"u{i}", "skip", 1000) for i in range(100)]))
    before = store.round_trips
    users = store.read_many([f"u{i}" for i in range(100)])
    assert store.round_trips == before + 1
    assert [u.event_count("skip") for u in users] == [1] * 100
    assert users[0].get("skip_rate") == 1.0
    assert 0 < client.ttl(keys.user_features(settings.redis_namespace, "u0")) <= 1
    time.sleep(1.5)
    assert store.read("u0").event_count("skip") == 0


def test_uncommitted_batch_is_redelivered_to_the_next_processor_without_double_counting(settings: Settings) -> None:
    """A processor that dies after writing Redis but before committing: its successor re-reads
    the batch and the offset watermarks leave the counts as if each event was applied once."""
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    producer = KafkaPythonProducer(settings.kafka_bootstrap)
    for _ in range(5):
        producer.send(
            topics.events,
            _event("hal", "card_click", 5, shelf_id="shelf-03", item_id="c9").SerializeToString(),
            key=b"hal",
        )
    producer.send(topics.events, b"not an event", key=b"hal")
    producer.flush()

    crashed = build_stream_processor(settings)
    store = ReadWrite(redis.Redis.from_url(settings.redis_url), namespace=settings.redis_namespace)
    consumer = crashed._consumer  # apply without committing, as if killed just before the commit
    seen: list = []

    def poll_and_apply() -> bool:
        records = consumer.poll(0.5)
        seen.extend(records)
        good = [r for r in records if r.value != b"not an event"]
        store.apply([(decode_event(r.value, r.headers), Provenance(r.topic, r.partition, r.offset)) for r in good])
        return len(seen) >= 6

    wait_for(poll_and_apply, what="the first consumer to apply the batch")
    crashed.close()

    successor = build_stream_processor(settings)
    try:
        wait_for(lambda: (successor.process_once(), successor.stats.consumed >= 6)[1], what="redelivery")
        assert successor.stats.duplicates == 5 and successor.stats.applied == 0 and successor.stats.rejected == 1
        assert store.read("hal").shelf_engagement("shelf-03") == 5
    finally:
        successor.close()


def test_a_failed_commit_rewinds_and_redelivers_without_double_counting(settings: Settings) -> None:
    """The broker refuses a commit (e.g. a rebalance took the partition): the processor drops
    the batch in flight, rewinds to the last commit, and the redelivery changes nothing twice."""
    import threading

    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    producer = KafkaPythonProducer(settings.kafka_bootstrap)
    for i in range(20):
        event = _event("ivo", "card_click", 10 + i, shelf_id="shelf-04", item_id=f"c{i % 3}")
        producer.send(topics.events, event.SerializeToString(), key=b"ivo")
    producer.flush()
    processor = build_stream_processor(settings)
    real_commit = processor._consumer.commit
    failures = {"left": 1}

    def flaky_commit(offsets: dict | None = None) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("commit refused")
        real_commit(offsets)

    processor._consumer.commit = flaky_commit  # type: ignore[method-assign]
    stop = threading.Event()
    worker = threading.Thread(target=processor.run, args=(stop,), daemon=True)
    worker.start()
    store = ReadWrite(redis.Redis.from_url(settings.redis_url), namespace=settings.redis_namespace)
    try:
        wait_for(
            lambda: processor.stats.consumed >= 20 and failures["left"] == 0, what="all 20 committed after a failure"
        )
        assert store.read("ivo").shelf_engagement("shelf-04") == 20
        assert processor.stats.duplicates >= 1  # the refused batch came again and was a no-op
    finally:
        stop.set()
        worker.join(10)
        processor.close()


def test_reading_only_the_ranking_fields_equals_the_full_read(store: ReadWrite) -> None:
    """`read_for_ranking` (one HMGET of the candidates' fields) gives the same numbers as a full read."""
    rng = np.random.default_rng(0)
    shelves, cards = [f"shelf-{s}" for s in range(6)], [f"card-{c}" for c in range(40)]
    events = [
        records_pb2.UserEvent(
            event_id=f"e{i}", user_id="ranked-user", type=("play", "card_click", "skip")[i % 3],
            event_time_ms=1_700_000_000_000 + i, shelf_id=shelves[int(rng.integers(6))],
            item_id=cards[int(rng.integers(40))], listened_seconds=30.0, track_length_seconds=180.0,
        )
        for i in range(300)
    ]  # fmt: skip
    store.apply(_sourced(events))
    types = ("card_click", "play", "skip", "sticker_sent")
    hash_size = store._redis.hlen(keys.user_features(store._namespace, "ranked-user"))
    # a few fields of a hash more than twice their number (HMGET), every card (the whole hash), and
    # an id holding the fields' separator (plain HMGET)
    for asked_shelves, asked_cards in (
        ([*shelves[:2], "never-seen"], [*cards[::8], "never-seen"]),
        ([*shelves, "never-seen"], [*cards, "never-seen"]),
        ([*shelves[:2], "never-seen"], [*cards[::8], "odd\x1fid"]),
    ):
        asked = len(types) + len(asked_shelves) + len(asked_cards)
        fetched = store.read_for_ranking("ranked-user", types, asked_shelves, asked_cards)
        full = store.read("ranked-user").for_ranking(types, asked_shelves, asked_cards)
        for a, b in zip(fetched, full, strict=True):
            np.testing.assert_array_equal(a, b)
        assert fetched.counts.tolist()[:3] == [100.0, 100.0, 100.0] and fetched.cards.sum() > 0
        assert fetched.shelves[-1] == 0 and fetched.cards[-1] == 0
        assert (hash_size > 2 * asked) == (len(asked_cards) < len(cards))  # every path is exercised


def test_sticker_sends_are_read_for_just_the_candidates_and_under_the_pseudonym(settings: Settings) -> None:
    """The sticker re-rank reads `sticker.sends` for its candidates only (one HMGET), and with
    TASTEMAKER_USER_ID_KEY set it reads the pseudonymous key the stream processor wrote."""
    from tastemaker.features.pseudonyms import Pseudonyms
    from tastemaker.features.store import STICKER_SENDS

    pseudonyms = Pseudonyms(b"k" * 32)
    for store in (
        ReadWrite(connect(settings.redis_url), namespace=f"plain-{uuid.uuid4().hex[:6]}"),
        ReadWrite(connect(settings.redis_url), namespace=f"pseud-{uuid.uuid4().hex[:6]}", pseudonyms=pseudonyms),
    ):
        sends = [("emoji-1f389", 3), ("emoji-2764", 1), ("emoji-1f389", 0)]
        events = [
            _event("chatty", "sticker_sent", 1_700_000_000_000 + i, item_id=sticker)
            for i, (sticker, _) in enumerate([sends[0]] * 3 + [sends[1]])
        ]
        events.append(_event("chatty", "card_click", 1_700_000_000_100, shelf_id="s", item_id="card-1"))
        store.apply(_sourced(events))
        counts = store.read_item_counts("chatty", STICKER_SENDS, ["emoji-2764", "emoji-1f389", "never-sent", "card-1"])
        assert counts.tolist() == [1.0, 3.0, 0.0, 0.0]
        assert counts.tolist()[:2] == [store.read("chatty").sticker_sends(i) for i in ("emoji-2764", "emoji-1f389")]
        assert store.read_item_counts("chatty", STICKER_SENDS, []).size == 0


def test_one_users_burst_of_thousands_of_distinct_items_is_applied(store: ReadWrite) -> None:
    """A batch in which one user touches 6,000 distinct cards (a backfill, a bot) is one update of
    ~12,000 fields: more than Lua's unpack() takes at once, so the script reads and writes in slices."""
    events = [
        _event("burst", "card_click", 1_700_000_000_000 + i, shelf_id=f"shelf-{i % 7}", item_id=f"card-{i}")
        for i in range(6000)
    ]
    assert store.apply(_sourced(events)) == 6000
    features = store.read("burst")
    assert features.event_count("card_click") == 6000
    assert len(features.keyed["card.engagement"]) == 6000
    assert all(v == 1 for v in features.keyed["card.engagement"].values())
    assert sum(features.keyed["shelf.engagement"].values()) == 6000
    assert store.apply(_sourced(events)) == 0  # and a redelivery still changes nothing
