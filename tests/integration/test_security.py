"""TLS, mutual TLS, certificate reload, per-client tokens and scopes, and the refusal to listen
beyond loopback without them — over a real port, with certificates made here."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tastemaker.features.topics import Topics
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.records.layout import unpack
from tastemaker.services.bootstrap import Serving, build_serving, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.services.security import SecurityError
from tastemaker.v1 import api_pb2, api_pb2_grpc, records_pb2
from tests.integration.helpers import records_on, wait_for
from tests.support.certificates import Authority

pytestmark = pytest.mark.integration


def _serve(settings: Settings) -> Serving:
    prepare_topics(settings)
    serving = build_serving(settings, seed=0)
    serving.server.start()
    return serving


def _rank(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> api_pb2.RankHomeResponse:
    return api_pb2_grpc.HomeRankingStub(channel).RankHome(
        api_pb2.RankHomeRequest(user_id="secure-user", max_shelves=2), timeout=10, metadata=metadata
    )


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority.create("tastemaker test CA")


@pytest.fixture
def tls_serving(settings: Settings, authority: Authority, tmp_path: Path) -> Iterator[tuple[Serving, Path]]:
    cert, key = authority.write_server(tmp_path)
    serving = _serve(settings.with_(tls_cert=str(cert), tls_key=str(key)))
    try:
        yield serving, cert
    finally:
        serving.stop(grace_s=1)


def test_tls_answers_trusted_clients_and_not_plaintext(tls_serving: tuple[Serving, Path], authority: Authority) -> None:
    serving, _ = tls_serving
    address = f"127.0.0.1:{serving.server.port}"
    with grpc.secure_channel(address, grpc.ssl_channel_credentials(authority.pem)) as channel:
        assert _rank(channel).decision_id
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as refused:
        _rank(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    stranger = Authority.create("some other CA")
    with (
        grpc.secure_channel(address, grpc.ssl_channel_credentials(stranger.pem)) as channel,
        pytest.raises(grpc.RpcError),
    ):
        _rank(channel)


def test_a_changed_certificate_is_used_for_new_connections_and_open_ones_stay(
    tls_serving: tuple[Serving, Path], authority: Authority, tmp_path: Path
) -> None:
    serving, cert = tls_serving
    address = f"127.0.0.1:{serving.server.port}"
    with grpc.secure_channel(address, grpc.ssl_channel_credentials(authority.pem)) as old:
        assert _rank(old).decision_id
        renewed = Authority.create("renewed CA")
        new_cert, new_key = renewed.issue("tastemaker-test-server", server=True)
        key_path = Path(serving.server.security.certificates.key)  # type: ignore[union-attr]
        key_path.write_bytes(new_key)
        cert.write_bytes(new_cert)
        os.utime(cert, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a visible change

        def renewed_answers() -> bool:
            with grpc.secure_channel(address, grpc.ssl_channel_credentials(renewed.pem)) as channel:
                try:
                    return bool(_rank(channel).decision_id)
                except grpc.RpcError:
                    return False

        wait_for(renewed_answers, timeout_s=20, what="a handshake with the renewed certificate")
        assert _rank(old).decision_id  # the connection opened before the change still serves
        assert serving.server.security.certificates.reloads >= 1  # type: ignore[union-attr]


def test_mutual_tls_refuses_a_client_without_a_certificate(
    settings: Settings, authority: Authority, tmp_path: Path
) -> None:
    cert, key = authority.write_server(tmp_path)
    ca = tmp_path / "clients-ca.crt"
    ca.write_bytes(authority.pem)
    serving = _serve(settings.with_(tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(ca)))
    address = f"127.0.0.1:{serving.server.port}"
    try:
        with grpc.secure_channel(address, grpc.ssl_channel_credentials(authority.pem)) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                _rank(channel)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        client_cert, client_key = authority.issue("web-home", server=False)
        credentials = grpc.ssl_channel_credentials(authority.pem, client_key, client_cert)
        with grpc.secure_channel(address, credentials) as channel:
            assert _rank(channel).decision_id
    finally:
        serving.stop(grace_s=1)


def _tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    digest = {name: hashlib.sha256(f"secret-{name}".encode()).hexdigest() for name in ("web", "ops")}
    path.write_text(
        f"# client   sha256(token)   scopes\nweb {digest['web']} rank,stickers\nops {digest['ops']} admin\n"
    )
    return path


def test_tokens_and_scopes(settings: Settings, tmp_path: Path) -> None:
    serving = _serve(settings.with_(auth_tokens_file=str(_tokens(tmp_path)), open_reflection=False))
    address = f"127.0.0.1:{serving.server.port}"

    def code(call) -> grpc.StatusCode | None:  # type: ignore[no-untyped-def]
        try:
            call()
            return None
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[attr-defined,no-any-return]

    try:
        with grpc.insecure_channel(address) as channel:
            feedback = api_pb2_grpc.FeedbackStub(channel)
            web = (("authorization", "Bearer secret-web"),)
            ops = (("authorization", "Bearer secret-ops"),)
            assert code(lambda: _rank(channel)) == grpc.StatusCode.UNAUTHENTICATED
            assert (
                code(lambda: _rank(channel, (("authorization", "Bearer guessed"),))) == grpc.StatusCode.UNAUTHENTICATED
            )
            assert code(lambda: _rank(channel, (("authorization", "secret-web"),))) == grpc.StatusCode.UNAUTHENTICATED
            decision = _rank(channel, web)
            report = api_pb2.ReportOutcomeRequest(decision_id=decision.decision_id, item_id="x", reward=1.0)
            assert code(lambda: feedback.ReportOutcome(report, timeout=10, metadata=web)) == (
                grpc.StatusCode.PERMISSION_DENIED
            )
            assert code(lambda: feedback.ReportOutcome(report, timeout=10, metadata=ops)) is None  # admin: all
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING  # probes carry no tokens
        assert serving.server.security.auth.refused == 4  # type: ignore[union-attr]
    finally:
        serving.stop(grace_s=1)
    logged = {
        records_pb2.DecisionLog.FromString(r.value).decision_id: records_pb2.DecisionLog.FromString(r.value).client_id
        for r in records_on(settings.kafka_bootstrap, Topics(settings.topic_prefix).decisions)
    }
    assert logged[decision.decision_id] == "web"  # the decision log names the client that asked


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("web nothex rank", "is not a SHA-256"),
        (f"web {'a' * 64} rank,root", "unknown scope 'root'"),
        ("web", "want `client-id sha256-hex"),
    ],
)
def test_a_bad_tokens_file_is_refused_with_its_line(
    settings: Settings, tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "tokens"
    path.write_text(line + "\n")
    with pytest.raises(SecurityError, match=message):
        build_serving(settings.with_(auth_tokens_file=str(path)))


def test_listening_beyond_loopback_needs_tls_and_tokens_or_insecure(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(
        SecurityError, match="refusing to listen on 0.0.0.0 without TLS .*, tokens .* and a decision key"
    ):
        build_serving(settings.with_(grpc_host="0.0.0.0"))
    serving = build_serving(settings.with_(grpc_host="0.0.0.0", insecure=True))
    serving.stop(grace_s=0)
    environ = {
        **os.environ,
        "TASTEMAKER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TASTEMAKER_REDIS_URL": settings.redis_url,
        "TASTEMAKER_GRPC_HOST": "0.0.0.0",
    }
    refused = subprocess.run(
        [sys.executable, "-m", "tastemaker.cli", "serve", "--port", "0"],
        env=environ, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and "--insecure" in refused.stderr, refused.stderr


def test_outcomes_only_for_decisions_this_deployment_served_to_the_same_client(
    settings: Settings, tmp_path: Path
) -> None:
    """With TASTEMAKER_DECISION_KEY: a client may report outcomes only for its own decisions, within
    the reward window; forged, foreign and expired ids get a clear status and never reach
    tastemaker.outcomes. The joiner refuses the same ids when they arrive on Kafka directly."""
    from tastemaker.features.joiner import RewardJoiner
    from tastemaker.features.redis_connect import connect
    from tastemaker.messaging.kafka_python import KafkaPythonConsumer
    from tastemaker.records.ids import DecisionIds

    tokens = tmp_path / "tokens"
    tokens.write_text(
        "".join(
            f"{name} {hashlib.sha256(f'secret-{name}'.encode()).hexdigest()} rank,feedback\n" for name in ("web", "app")
        )
    )
    key = "a-deployment-key-of-32-bytes-xyz"
    secured = settings.with_(auth_tokens_file=str(tokens), decision_key=key, reward_window_s=2.0)
    serving = _serve(secured)
    web, app = (("authorization", "Bearer secret-web"),), (("authorization", "Bearer secret-app"),)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            feedback = api_pb2_grpc.FeedbackStub(channel)

            def report(decision_id: str, who: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
                request = api_pb2.ReportOutcomeRequest(decision_id=decision_id, item_id="card", reward=1.0)
                try:
                    feedback.ReportOutcome(request, timeout=10, metadata=who)
                    return grpc.StatusCode.OK
                except grpc.RpcError as exc:
                    assert "`decision_id`" in exc.details()  # type: ignore[attr-defined]
                    return exc.code()  # type: ignore[attr-defined,no-any-return]

            mine = _rank(channel, web).decision_id
            assert report(mine, web) == grpc.StatusCode.OK
            assert report(mine, app) == grpc.StatusCode.PERMISSION_DENIED  # foreign
            assert report(mine[:-4] + "0000", web) == grpc.StatusCode.PERMISSION_DENIED  # forged
            assert report("5beecabdf9fb43a786d1adbdef53476b", web) == grpc.StatusCode.PERMISSION_DENIED
            time.sleep(2.2)
            assert report(mine, web) == grpc.StatusCode.FAILED_PRECONDITION  # replayed after its window
        assert serving.feedback.refused == 4
    finally:
        serving.stop(grace_s=1)
    topics = Topics(secured.topic_prefix)
    reported = [records_pb2.Outcome.FromString(r.value) for r in records_on(secured.kafka_bootstrap, topics.outcomes)]
    assert [(o.decision_id, o.client_id) for o in reported] == [(mine, "web")]

    # an outcome written to Kafka directly, past the server, with a forged id: dead-lettered
    from tastemaker.messaging.kafka_python import KafkaPythonProducer

    forged = records_pb2.Outcome(
        outcome_id="x", decision_id=DecisionIds(b"not-the-deployment-key").mint(0, 10**12, "web"),
        item_id="card", reward=1.0, client_id="web", reported_at_ms=int(time.time() * 1000),
    )  # fmt: skip
    producer = KafkaPythonProducer(secured.kafka_bootstrap)
    producer.send(topics.outcomes, forged.SerializeToString(), key=b"forged", headers=PROTOBUF_HEADERS)
    producer.flush()
    producer.close()
    # a joiner of this deployment (its key), reading the outcomes topic from the start
    joiner = RewardJoiner(
        KafkaPythonConsumer(secured.kafka_bootstrap, [topics.decisions, topics.outcomes], f"joiner-{time.time_ns()}"),
        connect(secured.redis_url),
        KafkaPythonProducer(secured.kafka_bootstrap),
        topics,
        namespace=secured.redis_namespace,
        decision_ids=DecisionIds(key.encode()),
    )
    try:

        def both_outcomes_seen() -> bool:
            joiner.consume_once(timeout_s=1.0)
            return joiner.stats.outcomes + joiner.stats.rejected >= 2

        wait_for(both_outcomes_seen, timeout_s=120, what="the joiner reading both outcomes")
        assert joiner.stats.outcomes == 1 and joiner.stats.rejected == 1  # the genuine one staged, the forged not
        reasons = [
            records_pb2.DeadLetter.FromString(r.value).reason
            for r in records_on(secured.kafka_bootstrap, topics.events_dlq)
        ]
        assert [r for r in reasons if forged.decision_id in r and "was not issued by this deployment" in r], reasons
    finally:
        joiner.close()


def test_pseudonymous_users_and_an_allow_list_of_logged_context(settings: Settings) -> None:
    """With TASTEMAKER_USER_ID_KEY the user is stored in Redis and logged on Kafka under a keyed
    pseudonym (never the id itself), and still ranked with their features; only the allowed
    context keys reach the decision log."""
    from tastemaker.features.pseudonyms import Pseudonyms
    from tastemaker.features.redis_connect import connect
    from tastemaker.messaging.kafka_python import KafkaPythonProducer
    from tastemaker.services.bootstrap import build_stream_processor

    private = settings.with_(user_id_key="a-user-id-key-of-32-bytes-abcdef", logged_context_keys="device")
    pseudonym = Pseudonyms(private.user_id_key.encode()).of("alice@example.com")
    prepare_topics(private)
    topics = Topics(private.topic_prefix)
    producer = KafkaPythonProducer(private.kafka_bootstrap)
    for i in range(4):
        event = records_pb2.UserEvent(
            event_id=f"p{i}", user_id="alice@example.com", type="card_click", shelf_id="shelf-01",
            item_id="card-01-00", event_time_ms=1_700_000_000_000 + i,
        )  # fmt: skip
        producer.send(topics.events, event.SerializeToString(), key=b"alice", headers=PROTOBUF_HEADERS)
    producer.flush()
    producer.close()
    processor = build_stream_processor(private)
    try:
        wait_for(lambda: processor.process_once() or processor.stats.applied >= 4, timeout_s=60, what="events applied")
    finally:
        processor.close()
    stored = [k.decode() for k in connect(private.redis_url).scan_iter(match=f"{private.redis_namespace}:*")]
    assert stored and not any("alice" in k for k in stored), stored
    assert any(pseudonym in k for k in stored)

    serving = _serve(private)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            response = api_pb2_grpc.HomeRankingStub(channel).RankHome(
                api_pb2.RankHomeRequest(
                    user_id="alice@example.com", context={"device": "ios", "email": "alice@example.com"}
                ),
                timeout=10,
            )
    finally:
        serving.stop(grace_s=1)
    logs = {
        (log := unpack(records_pb2.DecisionLog.FromString(r.value))).decision_id: log
        for r in records_on(private.kafka_bootstrap, topics.decisions)
    }
    logged = logs[response.decision_id]
    assert logged.user_id == pseudonym and "alice" not in logged.SerializeToString().decode(errors="replace")
    assert dict(logged.context) == {"device": "ios"}
    engagement = dict(zip(logged.feature_names, logged.feature_values, strict=True))
    assert engagement["shelf:shelf-01"] == 4  # ranked with alice's features, read by pseudonym
