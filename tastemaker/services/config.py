"""Configuration, read in one place from `TASTEMAKER_*` environment variables (flags override)."""

from __future__ import annotations

import difflib
import logging
import math
import os
from dataclasses import dataclass, fields, replace
from typing import Any

from tastemaker.messaging import COMPRESSIONS

log = logging.getLogger(__name__)

ENV_PREFIX = "TASTEMAKER_"


class ConfigError(ValueError):
    pass


#: `TASTEMAKER_*` variables read outside `Settings` (progress bars, tests and benchmarks)
OTHER_VARIABLES = frozenset({"PROGRESS", "NO_OBP", "OBP_PYTHON", "OBD_DIR", "TEST_REDIS_URL", "TEST_KAFKA_BOOTSTRAP"})


def unknown_variables(environ: dict[str, str]) -> list[str]:
    """`TASTEMAKER_*` variables that nothing reads, each with the closest known name if one is close."""
    known = {f.name.upper() for f in fields(Settings)} | OTHER_VARIABLES
    out = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name[len(ENV_PREFIX) :] in known:
            continue
        close = difflib.get_close_matches(name[len(ENV_PREFIX) :], sorted(known), n=1)
        out.append(f"{name} (did you mean {ENV_PREFIX}{close[0]}?)" if close else name)
    return out


STRATEGIES = ("epsilon-greedy", "softmax", "linucb", "thompson", "squarecb")


@dataclass(frozen=True)
class Settings:
    #: Kafka bootstrap servers; empty means "start an embedded broker" for `tastemaker up`.
    kafka_bootstrap: str = ""
    #: Redis URL; empty means "start an embedded Redis" for `tastemaker up`.
    redis_url: str = ""
    #: Kafka connection security for both adapters (`messaging/security.py`): PLAINTEXT (default),
    #: SSL, SASL_PLAINTEXT or SASL_SSL; SASL mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    topic_prefix: str = "tastemaker"
    #: Kafka adapter: "kafka-python" (pure Python) or "confluent" (librdkafka).
    kafka_client: str = "kafka-python"
    #: producer compression of every record batch: none, gzip, lz4 or zstd (a packed 20×20 home
    #: decision of ~3.7 KB is ~1 KB compressed alone, less in a batch: `make bench`)
    kafka_compression: str = "zstd"
    #: Prefix of every Redis key.
    redis_namespace: str = "tm"
    #: replicas that must hold a stream worker's Redis writes before it commits their Kafka offsets
    #: (Redis WAIT; 0: off). On a Redis Cluster set 1: otherwise a master's failover can lose
    #: acknowledged writes whose offsets are already committed. Each batch then costs one WAIT
    #: round trip per master written, and a master without a live replica holds the stream back.
    redis_wait_replicas: int = 0
    redis_wait_timeout_ms: int = 1000
    grpc_host: str = "127.0.0.1"
    #: TLS for gRPC: server certificate chain and key (PEM files, re-read when they change or on
    #: SIGHUP); with `tls_client_ca`, clients must present a certificate that CA signed (mTLS)
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    #: per-client bearer tokens and scopes (`services/security.py`); unset: no authentication
    auth_tokens_file: str = ""
    #: reflection answers without a token (1) or only to `admin` clients (0)
    open_reflection: bool = True
    #: listen beyond loopback without TLS and tokens anyway
    insecure: bool = False
    #: the key that signs decision ids (shared by every replica and the joiner; at least 16 bytes):
    #: ReportOutcome then takes only ids this deployment served to the same client, within the
    #: reward window. Unset: random ids, every id accepted.
    decision_key: str = ""
    #: pseudonymise user ids in Redis keys and decision logs with this key (>= 16 bytes; unset: off)
    user_id_key: str = ""
    #: request-context keys written to decision logs (comma-separated; `*`: all)
    logged_context_keys: str = "*"
    grpc_port: int = 50051
    grpc_workers: int = 16
    grpc_max_message_bytes: int = 4 * 1024 * 1024
    epsilon: float = 0.1
    #: exploration strategy of the home ranker: epsilon-greedy, softmax, linucb or thompson
    strategy: str = "epsilon-greedy"
    #: softmax temperature; LinUCB's confidence width α; Thompson's posterior scale
    temperature: float = 1.0
    ucb_alpha: float = 1.0
    thompson_scale: float = 1.0
    #: SquareCB's γ (inverse-gap weighting of the first position: 0 uniform, larger greedier)
    squarecb_gamma: float = 100.0
    #: the linear posterior's discount per rewarded decision (1: remember everything; 0.999: about
    #: the last 1,000 decisions weigh), applied by the learner in Redis
    linear_forget: float = 1.0
    #: reward model artifact directory (`tastemaker train reward-model`); empty: engagement-linear
    reward_model: str = ""
    #: model registry directory: serving follows its current reward model (overrides reward_model)
    model_registry: str = ""
    #: how often serving checks the registry's current pointer and the linear posterior, seconds
    model_refresh_s: float = 1.0
    #: sticker model bundle (`tastemaker stickers train --out`); empty: SuggestStickers is unavailable
    sticker_model: str = ""
    #: stickers the ANN hands to the re-rank (and the decision logs as candidates), 1 to 500: fewer
    #: make the logged propensities larger and off-policy estimates of other rankings tighter
    sticker_candidates: int = 50
    #: SuggestStickers' ε-greedy exploration rate, apart from the home page's `epsilon` (0: greedy,
    #: for evaluation; every suggestion's propensity is logged either way)
    sticker_epsilon: float = 0.1
    #: the sticker re-rank: static (model score + 0.1·log(1 + sends)), learned (online from sends by
    #: the learner; static until it has learned) or side-by-side (half the users each, for comparing;
    #: what `up --demo` runs unless this is set)
    sticker_rerank: str = "learned"
    #: the learned re-rank's discount per rewarded sticker decision (1: remember everything; 0.999:
    #: about the last 1,000 decisions weigh, so each sticker's term follows what is trending)
    sticker_forget: float = 0.999
    #: a candidate reward model (artifact directory) run beside the live one on every request
    shadow_model: str = ""
    #: "shadow" (logged, never shown) or "apprentice" (takes over once it agrees often enough)
    shadow_mode: str = "shadow"
    apprentice_agreement: float = 0.9
    apprentice_window: int = 500
    #: every candidate's probability of each position is at least this (0: no floor)
    propensity_floor: float = 0.0
    max_shelves_default: int = 10
    max_cards_default: int = 10
    #: Outcomes are joined to a decision until served time + this window.
    reward_window_s: float = 30.0
    default_reward: float = 0.0
    #: the valid range of one reported reward (ReportOutcome and outcome records); the joiner
    #: dead-letters outcomes outside it, so one client cannot push the learners to infinity
    reward_min: float = -1000.0
    reward_max: float = 1000.0
    #: budget of one feature read on the request path, seconds (the Redis socket timeout); after
    #: `feature_breaker_failures` failures in a row ranking serves non-personalised at once and
    #: probes Redis every `feature_breaker_probe_s` in the background until it answers again
    feature_timeout_s: float = 0.05
    feature_breaker_failures: int = 3
    feature_breaker_probe_s: float = 1.0
    #: `up` and `serve` stop within this many seconds of SIGTERM/SIGINT, whatever is still running
    shutdown_grace_s: float = 15.0
    #: Prometheus metrics of the process (`up`, `serve`, `features run`, `joiner run`, `learner run`)
    #: on this port (0: off), bound to `metrics_host` (0.0.0.0 in a container, for the scraper)
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    #: the embedded broker (Tansu, memory storage, no retention) keeps every record in memory:
    #: `up` stops cleanly, with its report, once the broker holds this many MB
    embedded_broker_max_mb: int = 1024
    #: Decision-log records waiting to be sent; when full, new ones are dropped and counted.
    decision_queue_size: int = 10_000
    #: keep records waiting for Kafka in this SQLite file instead of memory: crash-safe, survives a
    #: broker outage and a restart (`services/spool.py`); bounded by `spool_max_records`
    spool_path: str = ""
    spool_max_records: int = 1_000_000
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ConfigError(f"TASTEMAKER_EPSILON must be in [0, 1], got {self.epsilon}")
        if self.shadow_mode not in ("shadow", "apprentice"):
            raise ConfigError(f"TASTEMAKER_SHADOW_MODE must be shadow or apprentice, got {self.shadow_mode!r}")
        if not 0.0 < self.apprentice_agreement <= 1.0 or self.apprentice_window < 1:
            raise ConfigError("TASTEMAKER_APPRENTICE_AGREEMENT must be in (0, 1] and TASTEMAKER_APPRENTICE_WINDOW >= 1")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"TASTEMAKER_STRATEGY must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        for name in ("temperature", "ucb_alpha", "thompson_scale"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"TASTEMAKER_{name.upper()} must be positive, got {getattr(self, name)}")
        if not (math.isfinite(self.squarecb_gamma) and self.squarecb_gamma >= 0):
            raise ConfigError(f"TASTEMAKER_SQUARECB_GAMMA must be a finite number >= 0, got {self.squarecb_gamma}")
        if not 0.0 < self.linear_forget <= 1.0:
            raise ConfigError(f"TASTEMAKER_LINEAR_FORGET must be in (0, 1], got {self.linear_forget}")
        if not 0.0 <= self.propensity_floor <= 0.1:
            raise ConfigError(f"TASTEMAKER_PROPENSITY_FLOOR must be in [0, 0.1], got {self.propensity_floor}")
        if not 0 <= self.grpc_port <= 65535:
            raise ConfigError(f"TASTEMAKER_GRPC_PORT must be a port number, got {self.grpc_port}")
        if self.reward_window_s < 0:
            raise ConfigError(f"TASTEMAKER_REWARD_WINDOW_S must be non-negative, got {self.reward_window_s}")
        if not (
            math.isfinite(self.reward_min) and math.isfinite(self.reward_max) and self.reward_min < self.reward_max
        ):
            raise ConfigError(f"TASTEMAKER_REWARD_MIN < _MAX must be finite, got {self.reward_min}, {self.reward_max}")
        if not self.reward_min <= self.default_reward <= self.reward_max:
            raise ConfigError(f"TASTEMAKER_DEFAULT_REWARD must be in the reward range, got {self.default_reward}")
        for name in ("feature_timeout_s", "feature_breaker_probe_s", "shutdown_grace_s", "embedded_broker_max_mb"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"TASTEMAKER_{name.upper()} must be positive, got {getattr(self, name)}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("TASTEMAKER_TLS_CERT and TASTEMAKER_TLS_KEY go together: set both or neither")
        if self.tls_client_ca and not self.tls_cert:
            raise ConfigError("TASTEMAKER_TLS_CLIENT_CA (mutual TLS) needs TASTEMAKER_TLS_CERT and _KEY")
        if self.user_id_key and len(self.user_id_key.encode()) < 16:
            raise ConfigError("TASTEMAKER_USER_ID_KEY must be at least 16 bytes")
        if self.decision_key and len(self.decision_key.encode()) < 16:
            raise ConfigError("TASTEMAKER_DECISION_KEY must be at least 16 bytes")
        if self.redis_wait_replicas < 0 or self.redis_wait_timeout_ms <= 0:
            raise ConfigError("TASTEMAKER_REDIS_WAIT_REPLICAS must be >= 0 and TASTEMAKER_REDIS_WAIT_TIMEOUT_MS > 0")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"TASTEMAKER_METRICS_PORT must be a port number, got {self.metrics_port}")
        if self.kafka_compression not in COMPRESSIONS:
            raise ConfigError(
                f"TASTEMAKER_KAFKA_COMPRESSION must be one of {', '.join(COMPRESSIONS)}, got {self.kafka_compression!r}"
            )
        if self.kafka_client not in ("kafka-python", "confluent"):
            raise ConfigError(f"TASTEMAKER_KAFKA_CLIENT must be kafka-python or confluent, got {self.kafka_client!r}")
        if self.sticker_rerank not in ("static", "learned", "side-by-side"):
            raise ConfigError(
                f"TASTEMAKER_STICKER_RERANK must be static, learned or side-by-side, got {self.sticker_rerank!r}"
            )
        if not 0.0 < self.sticker_forget <= 1.0:
            raise ConfigError(f"TASTEMAKER_STICKER_FORGET must be in (0, 1], got {self.sticker_forget}")
        if not 0.0 <= self.sticker_epsilon <= 1.0:
            raise ConfigError(f"TASTEMAKER_STICKER_EPSILON must be in [0, 1], got {self.sticker_epsilon}")
        if not 1 <= self.sticker_candidates <= 500:
            raise ConfigError(f"TASTEMAKER_STICKER_CANDIDATES must be in [1, 500], got {self.sticker_candidates}")
        for name in (
            "max_shelves_default",
            "max_cards_default",
            "grpc_workers",
            "decision_queue_size",
            "feature_breaker_failures",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"TASTEMAKER_{name.upper()} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `TASTEMAKER_*` variables, then `overrides` (flags; None means unset)."""
        environ = dict(os.environ if environ is None else environ)
        for unknown in unknown_variables(environ):  # a typo must not pass silently as the default
            log.warning("unknown configuration variable %s: it is ignored", unknown)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            kind = type(getattr(cls, f.name))
            try:
                values[f.name] = _boolean(raw) if kind is bool else kind(raw)
            except ValueError as exc:
                raise ConfigError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{raw!r} is not a boolean")
