"""Property-based fuzzing (Hypothesis) of every RPC over a real port: random bodies, truncated and
oversized messages, extreme numbers, NaN/inf, control characters, invalid UTF-8, duplicate ids,
10,000 candidates. Every answer is OK or a client-error status naming the problem — never INTERNAL
or UNKNOWN — and the server stays up, its health SERVING. Derandomised: every run tries the same
cases; found cases are kept as @example."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tastemaker.services.bootstrap import Serving
from tastemaker.v1 import api_pb2

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
METHODS = {
    "RankHome": "/tastemaker.v1.HomeRanking/RankHome",
    "SuggestStickers": "/tastemaker.v1.Stickers/SuggestStickers",
    "ReportOutcome": "/tastemaker.v1.Feedback/ReportOutcome",
    "Activate": "/tastemaker.v1.Feedback/Activate",
}
#: what a caller may be told: its own mistake, a precondition (no sticker model here), a size limit
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
IDS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "a" * 300, "tab\there", "nul\x00", "\u202eevil", "dup", "😀" * 70]),
)
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 5e-324]))


def _call(channel: grpc.Channel, method: str, body: bytes) -> grpc.StatusCode:
    call = channel.unary_unary(METHODS[method], request_serializer=None, response_deserializer=None)
    try:
        call(body, timeout=30)
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def fuzzed(serving: Serving, channel: grpc.Channel):  # type: ignore[no-untyped-def]
    """The channel; afterwards the server must still report SERVING."""
    yield channel
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING


@FUZZ
@given(method=st.sampled_from(sorted(METHODS)), body=st.binary(max_size=2048))
@example(method="RankHome", body=b"\x0a\x05ab")  # a string field cut short
@example(method="RankHome", body=b"\x0a\x02\xff\xfe")  # user_id that is not UTF-8
@example(method="ReportOutcome", body=b"\x19" + b"\x00" * 7 + b"\xf8\x7f")  # reward = NaN, 8 bytes cut to 9
def test_random_bodies(fuzzed: grpc.Channel, method: str, body: bytes) -> None:
    assert _call(fuzzed, method, body) in ALLOWED


@FUZZ
@given(
    user_id=IDS,
    max_shelves=INT32,
    max_cards=INT32,
    shelves=st.lists(st.tuples(IDS, st.lists(IDS, max_size=8)), max_size=12),
    context=st.dictionaries(IDS, IDS, max_size=5),
    pinned=st.lists(st.tuples(IDS, INT32), max_size=3),
    excluded=st.lists(IDS, max_size=5),
)
@example(user_id="u", max_shelves=2**31 - 1, max_cards=2**31 - 1, shelves=[], context={}, pinned=[], excluded=[])
@example(user_id="u", max_shelves=3, max_cards=3, shelves=[("dup", ["c", "c"]), ("dup", ["c"])], context={},
         pinned=[("dup", 0), ("dup", -5)], excluded=["dup"])  # fmt: skip
def test_rank_home_requests(
    fuzzed: grpc.Channel,
    user_id: str,
    max_shelves: int,
    max_cards: int,
    shelves: list[tuple[str, list[str]]],
    context: dict[str, str],
    pinned: list[tuple[str, int]],
    excluded: list[str],
) -> None:
    request = api_pb2.RankHomeRequest(
        user_id=user_id,
        max_shelves=max_shelves,
        max_cards_per_shelf=max_cards,
        candidates=[api_pb2.Shelf(shelf_id=s, card_ids=cards) for s, cards in shelves],
        context=context,
        pinned_shelves=[api_pb2.PinnedShelf(shelf_id=s, position=p) for s, p in pinned],
        excluded_item_ids=excluded,
    )
    assert _call(fuzzed, "RankHome", request.SerializeToString()) in ALLOWED


@FUZZ
@given(decision_id=IDS, item_id=IDS, reward=NUMBERS, event_type=IDS, key=IDS)
@example(decision_id="d", item_id="i", reward=float("inf"), event_type="click", key="")
def test_report_outcome_requests(
    fuzzed: grpc.Channel, decision_id: str, item_id: str, reward: float, event_type: str, key: str
) -> None:
    request = api_pb2.ReportOutcomeRequest(
        decision_id=decision_id, item_id=item_id, reward=reward, event_type=event_type, idempotency_key=key
    )
    assert _call(fuzzed, "ReportOutcome", request.SerializeToString()) in ALLOWED


@FUZZ
@given(user_id=IDS, message=st.text(max_size=300), language=IDS, k=INT32, context=st.dictionaries(IDS, IDS, max_size=3))
def test_suggest_stickers_requests(
    fuzzed: grpc.Channel, user_id: str, message: str, language: str, k: int, context: dict[str, str]
) -> None:
    request = api_pb2.SuggestStickersRequest(user_id=user_id, message=message, language=language, k=k, context=context)
    assert _call(fuzzed, "SuggestStickers", request.SerializeToString()) in ALLOWED


@pytest.mark.parametrize(
    "request_",
    [
        api_pb2.RankHomeRequest(
            user_id="u", candidates=[api_pb2.Shelf(shelf_id="s", card_ids=[f"c{i}" for i in range(10_000)])]
        ),
        api_pb2.RankHomeRequest(
            user_id="u", candidates=[api_pb2.Shelf(shelf_id=f"s{i}", card_ids=["c"]) for i in range(10_000)]
        ),
        api_pb2.RankHomeRequest(user_id="u", context={f"k{i}": "v" for i in range(10_000)}),
        api_pb2.RankHomeRequest(user_id="u" * 5_000_000),  # over the 4 MiB message limit
    ],
    ids=["10k-cards", "10k-shelves", "10k-context", "5MB"],
)
def test_huge_requests_are_refused_with_a_client_error(fuzzed: grpc.Channel, request_: api_pb2.RankHomeRequest) -> None:
    assert _call(fuzzed, "RankHome", request_.SerializeToString()) in ALLOWED - {grpc.StatusCode.OK}
