"""Each RPC's servicer called in-process with a fake context (the real-port tests are in
tests/integration): thin servicers that parse, call the application service and answer."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_models import EngagementScorer
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.records.layout import LAYOUT_PACKED, unpack
from tastemaker.services.errors import InvalidArgument
from tastemaker.services.feedback import FeedbackService
from tastemaker.services.grpc_server import (
    ErrorMappingInterceptor,
    FeedbackServicer,
    HomeRankingServicer,
    StickersServicer,
)
from tastemaker.services.home import HomeRankingService
from tastemaker.v1 import api_pb2, records_pb2
from tests.support.fakes import FixedFeatures


class Aborted(Exception):
    pass


class FakeContext:
    """What a servicer may use of grpc.ServicerContext: abort (which raises) and code."""

    def __init__(self) -> None:
        self.status: tuple[grpc.StatusCode, str] | None = None

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.status = (code, details)
        raise Aborted(details)

    def code(self) -> grpc.StatusCode | None:
        return self.status[0] if self.status else None


def _home(published: list[tuple[Any, ...]]) -> HomeRankingService:
    world = SimulatedWorld()
    return HomeRankingService(
        features=FixedFeatures(world), catalog=world.catalog(), model=EngagementScorer(EngagementLinearModel()),
        strategy=EpsilonGreedy(0.1), publish=lambda *a: published.append(a) or True, decisions_topic="decisions",
        default_max_shelves=3, default_max_cards=3, reward_window_s=1.0,
    )  # fmt: skip


def test_rank_home_answers_and_logs_the_page_it_shows() -> None:
    published: list[tuple[Any, ...]] = []
    response = HomeRankingServicer(_home(published)).RankHome(api_pb2.RankHomeRequest(user_id="u1"), FakeContext())
    assert len(response.shelves) == 3 and [s.position for s in response.shelves] == [0, 1, 2]
    ((topic, value, key, _),) = published
    decision = records_pb2.DecisionLog.FromString(value)
    assert topic == "decisions" and key == response.decision_id.encode()
    assert decision.layout == LAYOUT_PACKED and not decision.shown  # published packed, each id once
    unpack(decision)
    assert [s.shelf_id for s in decision.shown] == [s.shelf_id for s in response.shelves]
    assert [[c.card_id for c in s.cards] for s in decision.shown] == [
        [c.card_id for c in s.cards] for s in response.shelves
    ]


def test_report_outcome_publishes_an_outcome_with_a_stable_id() -> None:
    published: list[tuple[Any, ...]] = []
    servicer = FeedbackServicer(FeedbackService(lambda *a: published.append(a) or True, "outcomes"))
    request = api_pb2.ReportOutcomeRequest(decision_id="d", item_id="c", reward=1.0, event_type="click")
    first = servicer.ReportOutcome(request, FakeContext()).outcome_id
    assert servicer.ReportOutcome(request, FakeContext()).outcome_id == first
    assert records_pb2.Outcome.FromString(published[0][1]).outcome_id == first
    with pytest.raises(InvalidArgument, match="reward"):
        servicer.ReportOutcome(api_pb2.ReportOutcomeRequest(decision_id="d", item_id="c", reward=5e3), FakeContext())


def test_suggest_stickers_validates_then_says_it_has_no_model() -> None:
    servicer = StickersServicer(None)
    with pytest.raises(InvalidArgument, match="`k`"):
        servicer.SuggestStickers(api_pb2.SuggestStickersRequest(user_id="u", message="hi", k=51), FakeContext())
    context = FakeContext()
    with pytest.raises(Aborted):
        servicer.SuggestStickers(api_pb2.SuggestStickersRequest(user_id="u", message="hi"), context)
    assert context.status is not None and context.status[0] == grpc.StatusCode.FAILED_PRECONDITION


def test_the_interceptor_maps_undecodable_bodies_and_invalid_fields_to_invalid_argument() -> None:
    def handler(request: api_pb2.RankHomeRequest, context: Any) -> api_pb2.RankHomeResponse:
        if not request.user_id:
            raise InvalidArgument("user_id", "is required")
        return api_pb2.RankHomeResponse(policy="ok")

    inner = grpc.unary_unary_rpc_method_handler(
        handler,
        request_deserializer=api_pb2.RankHomeRequest.FromString,
        response_serializer=api_pb2.RankHomeResponse.SerializeToString,
    )
    details = type("Details", (), {"method": "/tastemaker.v1.HomeRanking/RankHome"})()
    guarded = ErrorMappingInterceptor().intercept_service(lambda _: inner, details)
    assert guarded is not None
    for body, expected in ((b"\xff\xff", "not a valid message"), (b"", "`user_id` is required")):
        context = FakeContext()
        with pytest.raises(Aborted):
            guarded.unary_unary(guarded.request_deserializer(body), context)
        assert context.status is not None and context.status[0] == grpc.StatusCode.INVALID_ARGUMENT
        assert expected in context.status[1]
    ok = guarded.unary_unary(guarded.request_deserializer(b"\x0a\x01u"), FakeContext())
    assert ok.policy == "ok"


def test_serve_workers_flags_are_checked_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve --workers`: a count below 1, or several workers on an ephemeral port they could not
    share, exit 2 with one line, before any broker or Redis is touched."""
    from tastemaker.cli import main

    monkeypatch.setenv("TASTEMAKER_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("TASTEMAKER_REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main(["serve", "--workers", "2", "--port", "0"]) == 2
    assert "needs a fixed --port" in capsys.readouterr().err
