"""Kafka connection security, one description for both adapters: TLS (server CA, optionally a
client certificate) and SASL (PLAIN or SCRAM), as `TASTEMAKER_KAFKA_SECURITY_PROTOCOL`,
`TASTEMAKER_KAFKA_SASL_MECHANISM`, `_SASL_USERNAME`, `_SASL_PASSWORD`, `_SSL_CAFILE`,
`_SSL_CERTFILE`, `_SSL_KEYFILE`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"Kafka security protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.protocol.startswith("SASL"):
            if self.sasl_mechanism not in MECHANISMS:
                raise ValueError(f"SASL needs a mechanism, one of {', '.join(MECHANISMS)}, got {self.sasl_mechanism!r}")
            if not (self.sasl_username and self.sasl_password):
                raise ValueError("SASL needs a username and a password")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ValueError("a Kafka client certificate needs its key (and the key its certificate)")

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's clients."""
        if self.protocol == "PLAINTEXT":
            return {}
        out: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.startswith("SASL"):
            out |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out

    def confluent(self) -> dict[str, Any]:
        """Configuration entries for librdkafka (confluent-kafka)."""
        if self.protocol == "PLAINTEXT":
            return {}
        out: dict[str, Any] = {"security.protocol": self.protocol}
        if self.protocol.startswith("SASL"):
            out |= {
                "sasl.mechanisms": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password,
            }
        for name, key in (("ssl_cafile", "ssl.ca.location"), ("ssl_certfile", "ssl.certificate.location"),
                          ("ssl_keyfile", "ssl.key.location")):  # fmt: skip
            if getattr(self, name):
                out[key] = getattr(self, name)
        return out
