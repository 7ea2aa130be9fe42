"""Device decisions in the loop, against the real broker and Redis: a device answers offline from
its bundle, uploads its lists with the stickers sent from them — duplicates and garbage among them,
and the whole batch again — through a real server; the joiner joins the sends; `evaluate` counts
each device list once, under its own surface beside the server's."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import numpy as np
import pytest

from tastemaker.device.runtime import DeviceSuggester
from tastemaker.device.upload import Shown, as_upload, upload_requests
from tastemaker.features.joiner import RewardJoiner
from tastemaker.features.redis_connect import connect
from tastemaker.features.topics import Topics
from tastemaker.messaging.codec import decode
from tastemaker.messaging.kafka_python import KafkaPythonConsumer, KafkaPythonProducer
from tastemaker.services.bootstrap import build_serving, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.stickers.bundle import DEVICE_BUNDLE, load_bundle
from tastemaker.training.evaluation.job import EvaluationJob, run
from tastemaker.training.modeling.device_export import export_device
from tastemaker.v1 import api_pb2, api_pb2_grpc, records_pb2
from tests.integration.helpers import records_on, wait_for
from tests.support.stickers import MESSAGES, random_bundle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = random_bundle(tmp_path_factory.mktemp("device-loop"), MESSAGES)
    export_device(load_bundle(directory), directory / DEVICE_BUNDLE, MESSAGES)
    return directory


def _garbage(valid: api_pb2.DeviceDecision, now_ms: int) -> list[tuple[api_pb2.DeviceDecision, str]]:
    """Bad uploads, each with the words its rejection must hold."""
    out = []
    old = api_pb2.DeviceDecision()
    old.CopyFrom(valid)
    old.device_decision_id, old.served_at_ms = "old", now_ms - 8 * 24 * 3600 * 1000
    out.append((old, "too old"))
    forged = api_pb2.DeviceDecision()
    forged.CopyFrom(valid)
    forged.device_decision_id = "forged"
    forged.suggestions[0].propensity = 0.99
    out.append((forged, "propensity"))
    foreign = api_pb2.DeviceDecision()
    foreign.CopyFrom(valid)
    foreign.device_decision_id, foreign.candidate_ids[0] = "foreign", "emoji-not-ours"
    out.append((foreign, "foreign"))
    unshown = api_pb2.DeviceDecision()
    unshown.CopyFrom(valid)
    unshown.device_decision_id = "unshown"
    not_shown = [c for c in valid.candidate_ids if c not in {s.sticker_id for s in valid.suggestions}]
    unshown.sends.add(sticker_id=not_shown[0], sent_at_ms=now_ms)
    out.append((unshown, "did not show"))
    out.append((api_pb2.DeviceDecision(), "device_decision_id"))
    return out


def test_device_lists_are_joined_and_evaluated_once_under_their_surface(settings: Settings, model: Path) -> None:
    settings = settings.with_(sticker_model=str(model), reward_window_s=30.0)
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    serving = build_serving(settings, seed=0)
    serving.server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            feedback, stickers = api_pb2_grpc.FeedbackStub(channel), api_pb2_grpc.StickersStub(channel)
            device = DeviceSuggester.load(model / DEVICE_BUNDLE, rng=np.random.default_rng(3))
            shown = [Shown(device.suggest(m, 5)) for m in MESSAGES[:6]]
            for s in shown[:3]:  # the user sent the first suggestion of three lists
                s.sends.append((s.decision.suggestions[0].sticker_id, s.decision.served_at_ms + 2_000))
            request = upload_requests("device-user", shown)[0]
            request.decisions.append(as_upload(shown[0]))  # the same list twice in one batch
            now_ms = shown[-1].decision.served_at_ms
            garbage = _garbage(as_upload(shown[1]), now_ms)
            request.decisions.extend(g for g, _ in garbage)
            first = feedback.ReportDeviceDecisions(request)
            assert (first.accepted, first.duplicates) == (6, 1), first.rejected[:2]
            assert [r.index for r in first.rejected] == list(range(7, 7 + len(garbage)))
            for rejected, (_, words) in zip(first.rejected, garbage, strict=True):
                assert words in rejected.reason, rejected.reason
            again = feedback.ReportDeviceDecisions(request)  # a retried call: nothing counts twice
            assert (again.accepted, again.duplicates, len(again.rejected)) == (0, 7, len(garbage))
            with pytest.raises(grpc.RpcError) as too_many:
                big = api_pb2.ReportDeviceDecisionsRequest(user_id="u", decisions=[as_upload(shown[0])] * 501)
                feedback.ReportDeviceDecisions(big)
            assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "decisions" in too_many.value.details()
            # one list answered by the server, and a send from it
            served = stickers.SuggestStickers(
                api_pb2.SuggestStickersRequest(user_id="u", message="happy birthday", k=5)
            )
            feedback.ReportOutcome(api_pb2.ReportOutcomeRequest(
                decision_id=served.decision_id, item_id=served.suggestions[0].sticker_id, reward=1.0, event_type="send"
            ))  # fmt: skip
        serving.publisher.flush()
        # the metric's counts: the second call's seven repeats are duplicates, its garbage rejected again
        assert serving.device_decisions is not None
        counts = serving.device_decisions.counts
        assert (counts["accepted"], counts["duplicate"]) == (6, 8)
        assert (counts["rejected_too_old"], counts["rejected_foreign"], counts["rejected_malformed"]) == (2, 2, 6)
    finally:
        serving.stop(grace_s=1)

    clock = [now_ms]
    joiner = RewardJoiner(
        KafkaPythonConsumer(settings.kafka_bootstrap, [topics.decisions, topics.outcomes], f"{uuid.uuid4()}"),
        connect(settings.redis_url),
        KafkaPythonProducer(settings.kafka_bootstrap),
        topics,
        namespace=settings.redis_namespace,
        clock_ms=lambda: clock[0],
    )

    def caught_up() -> bool:
        joiner.consume_once(timeout_s=0.5)
        return joiner.stats.decisions >= 7 and joiner.stats.outcomes >= 4

    wait_for(caught_up, what="7 decisions and 4 sends consumed")
    assert joiner.close_due(now_ms=now_ms + 3_600_000) == 7
    joiner.close()
    rewarded = [decode(r.value, r.headers, records_pb2.RewardedDecision()) for r in records_on(
        settings.kafka_bootstrap, topics.rewarded)]  # fmt: skip
    surfaces = sorted(r.decision.surface for r in rewarded)
    assert surfaces == ["stickers"] + ["stickers-device"] * 6
    device_ids = [r.decision.context["device_decision_id"] for r in rewarded if r.decision.surface == "stickers-device"]
    assert sorted(device_ids) == sorted(s.decision.decision_id for s in shown)
    assert all(r.decision.client_id == "" and r.decision.user_id == "device-user" for r in rewarded
               if r.decision.surface == "stickers-device")  # fmt: skip

    export = Path(str(model.parent)) / "rewarded.jsonl"
    from tastemaker.records.log_files import write_export

    write_export(rewarded, export)
    report = run(EvaluationJob(format="rewarded", engine="memory", logs=export)).report
    assert report["stickers"]["by_surface"] == {
        "stickers": {"decisions": 1, "sends": 1},
        "stickers-device": {"decisions": 6, "sends": 3},
    }
    assert report["stickers"]["n_decisions"] == 7
