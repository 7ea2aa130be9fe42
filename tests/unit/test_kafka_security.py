"""Kafka TLS and SASL settings, one description for both adapters: the names each library expects
(checked against the libraries themselves), and clear refusals of what cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from tastemaker.messaging.confluent import ConfluentConsumer, ConfluentProducer
from tastemaker.messaging.security import KafkaSecurity
from tastemaker.services.bootstrap import kafka_security_of
from tastemaker.services.config import ConfigError, Settings
from tests.support.certificates import Authority


def test_plaintext_adds_nothing() -> None:
    assert KafkaSecurity().kafka_python() == {} and KafkaSecurity().confluent() == {}


def test_sasl_over_tls_maps_to_each_librarys_own_names(tmp_path: Path) -> None:
    authority = Authority.create("kafka CA")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(authority.pem)
    cert, key = authority.issue("tastemaker", server=False)
    (tmp_path / "client.pem").write_bytes(cert)
    (tmp_path / "client.key").write_bytes(key)
    security = KafkaSecurity(
        "SASL_SSL", "SCRAM-SHA-512", "tastemaker", "s3cret",
        str(ca), str(tmp_path / "client.pem"), str(tmp_path / "client.key"),
    )  # fmt: skip
    python_side = security.kafka_python()
    assert python_side["security_protocol"] == "SASL_SSL" and python_side["sasl_plain_password"] == "s3cret"
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):  # names kafka-python knows
        assert set(python_side) <= set(client.DEFAULT_CONFIG), set(python_side) - set(client.DEFAULT_CONFIG)
    # librdkafka validates every property name and value when a client is made (no connection yet)
    ConfluentProducer("127.0.0.1:1", security=security).close()
    ConfluentConsumer("127.0.0.1:1", ["t"], "g", security=security).close()
    assert security.confluent()["sasl.mechanisms"] == "SCRAM-SHA-512"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TASTEMAKER_KAFKA_SECURITY_PROTOCOL": "TLS"}, "must be one of PLAINTEXT"),
        ({"TASTEMAKER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "SASL needs a mechanism"),
        ({"TASTEMAKER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TASTEMAKER_KAFKA_SASL_MECHANISM": "PLAIN"},
         "needs a username and a password"),
        ({"TASTEMAKER_KAFKA_SECURITY_PROTOCOL": "SSL", "TASTEMAKER_KAFKA_SSL_CERTFILE": "c.pem"}, "needs its key"),
    ],
)  # fmt: skip
def test_settings_that_cannot_work_are_refused_with_a_reason(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        kafka_security_of(Settings.from_env(environ))
