"""The gRPC surface over a real port: reflection-only callers, health, and garbage input."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tastemaker.v1 import api_pb2, api_pb2_grpc

pytestmark = pytest.mark.integration


def test_rank_home_through_reflection_without_generated_code(channel: grpc.Channel) -> None:
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    service = pool.FindServiceByName("tastemaker.v1.HomeRanking")
    method = service.FindMethodByName("RankHome")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    response = call(request_class(user_id="reflective", max_shelves=3), timeout=10)
    assert response.decision_id
    assert len(response.shelves) == 3
    assert all(0 < shelf.propensity <= 1 for shelf in response.shelves)


def test_rank_home_answers_which_explanation_each_shelf_is_shown_under(channel: grpc.Channel) -> None:
    variants = ["because-you-played", "new-release"]
    candidates = [
        api_pb2.Shelf(
            shelf_id=f"s{i}",
            card_ids=[f"s{i}c{j}" for j in range(4)],
            explanation_ids=variants if i % 2 else [],
            features={"freshness": i / 4},
            card_features={f"s{i}c0": api_pb2.Features(values={"editorial": 1.0})},
        )  # fmt: skip
        for i in range(4)
    ]
    response = api_pb2_grpc.HomeRankingStub(channel).RankHome(
        api_pb2.RankHomeRequest(user_id="explained", candidates=candidates, max_shelves=4), timeout=10
    )
    assert len(response.shelves) == 4
    for shelf in response.shelves:
        if int(shelf.shelf_id[1:]) % 2:
            assert shelf.explanation_id in variants and 0 < shelf.explanation_propensity <= 1
        else:
            assert shelf.explanation_id == "" and shelf.explanation_propensity == 0


def test_health_reports_serving(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tastemaker.v1.HomeRanking", "tastemaker.v1.Feedback"):
        status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_the_health_command_exits_0_only_while_serving(serving, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """`tastemaker health` (the image's HEALTHCHECK): 0 and SERVING from a live server, 1 from an
    unknown service, a closed port, or a server shutting down; 2 for a bad flag."""
    from tastemaker.cli import main
    from tastemaker.services.embedded import free_port

    address = f"127.0.0.1:{serving.server.port}"
    assert main(["health", "--address", address]) == 0
    assert capsys.readouterr().out.strip() == f"{address}: SERVING"
    assert main(["health", "--address", address, "--service", "tastemaker.v1.HomeRanking"]) == 0
    assert main(["health", "--address", address, "--service", "no.such.Service"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().out
    closed = f"127.0.0.1:{free_port()}"
    assert main(["health", "--address", closed, "--timeout", "1"]) == 1
    out = capsys.readouterr().out
    assert "UNAVAILABLE" in out or "DEADLINE_EXCEEDED" in out
    assert main(["health", "--address", address, "--timeout", "0"]) == 2
    serving.server.health.enter_graceful_shutdown()
    assert main(["health", "--address", address]) == 1
    assert "NOT_SERVING" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (api_pb2.RankHomeRequest(user_id=""), "`user_id` is required"),
        (api_pb2.RankHomeRequest(user_id="u", max_shelves=-1), "`max_shelves` must be in [0, 100]"),
        (api_pb2.RankHomeRequest(user_id="u", max_cards_per_shelf=-3), "`max_cards_per_shelf` must be in [0, 100]"),
        (api_pb2.RankHomeRequest(user_id="u" * 300), "`user_id` is longer than 256"),
        (
            api_pb2.RankHomeRequest(user_id="u", candidates=[api_pb2.Shelf(shelf_id="s", card_ids=[])]),
            "`candidates[0].card_ids` must not be empty",
        ),
        (
            api_pb2.RankHomeRequest(
                user_id="u",
                candidates=[api_pb2.Shelf(shelf_id="s", card_ids=["a"]), api_pb2.Shelf(shelf_id="s", card_ids=["b"])],
            ),
            "`candidates[1].shelf_id` repeats",
        ),
        (
            api_pb2.RankHomeRequest(
                user_id="u", candidates=[api_pb2.Shelf(shelf_id="s", card_ids=["a"], explanation_ids=["e", "e"])]
            ),
            "`candidates[0].explanation_ids` has duplicate",
        ),
        (
            api_pb2.RankHomeRequest(
                user_id="u", candidates=[api_pb2.Shelf(shelf_id="s", card_ids=["a"], features={"x": float("nan")})]
            ),
            "`candidates[0].features['x']` must be a finite number",
        ),
        (
            api_pb2.RankHomeRequest(
                user_id="u",
                candidates=[
                    api_pb2.Shelf(shelf_id="s", card_ids=["a"], card_features={"b": api_pb2.Features(values={"x": 1})})
                ],
            ),
            "`candidates[0].card_features['b']` is not one of the shelf's card_ids",
        ),
    ],
)
def test_rank_home_rejects_bad_fields(channel: grpc.Channel, request_: api_pb2.RankHomeRequest, field: str) -> None:
    with pytest.raises(grpc.RpcError) as error:
        api_pb2_grpc.HomeRankingStub(channel).RankHome(request_, timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.value.details()


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (api_pb2.ReportOutcomeRequest(item_id="x", reward=1), "`decision_id` is required"),
        (api_pb2.ReportOutcomeRequest(decision_id="d", reward=1), "`item_id` is required"),
        (api_pb2.ReportOutcomeRequest(decision_id="d", item_id="x", reward=float("nan")), "`reward` must be finite"),
    ],
)
def test_report_outcome_rejects_bad_fields(
    channel: grpc.Channel, request_: api_pb2.ReportOutcomeRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        api_pb2_grpc.FeedbackStub(channel).ReportOutcome(request_, timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field.split(" must")[0] in error.value.details()


def test_ten_megabyte_request_is_refused_and_the_server_goes_on(channel: grpc.Channel) -> None:
    huge = api_pb2.RankHomeRequest(user_id="u", context={"blob": "x" * (10 * 1024 * 1024)})
    stub = api_pb2_grpc.HomeRankingStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.RankHome(huge, timeout=10)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.RankHome(api_pb2.RankHomeRequest(user_id="after"), timeout=5).decision_id


def test_suggest_stickers_without_a_model_says_how_to_get_one(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as error:
        api_pb2_grpc.StickersStub(channel).SuggestStickers(
            api_pb2.SuggestStickersRequest(user_id="u", message="hi"), timeout=5
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "TASTEMAKER_STICKER_MODEL" in (error.value.details() or "")


def test_garbage_bytes_on_the_wire_are_invalid(channel: grpc.Channel) -> None:
    call = channel.unary_unary("/tastemaker.v1.HomeRanking/RankHome")
    with pytest.raises(grpc.RpcError) as error:
        call(b"\xff\xff\xff\xff garbage", timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert api_pb2_grpc.HomeRankingStub(channel).RankHome(api_pb2.RankHomeRequest(user_id="ok"), timeout=5).shelves
