"""Configuration, read in one place from `TASTEMAKER_*` environment variables (flags override)."""

from __future__ import annotations

import difflib
import logging
import math
import os
import textwrap
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tastemaker.bandits.strategies import STRATEGY_PARAMETERS
from tastemaker.messaging import COMPRESSIONS

log = logging.getLogger(__name__)

ENV_PREFIX = "TASTEMAKER_"


class ConfigError(ValueError):
    pass


#: `TASTEMAKER_*` variables read outside `Settings` (progress bars, tests and benchmarks), with their help
OTHER_VARIABLES = {
    "PROGRESS": "1 or 0: progress bars on or off (default: on when stderr is a terminal).",
    "OBD_DIR": "Folder of the Open Bandit Dataset (tests, benchmarks and docs scripts skip what needs it when unset).",
    "TWEETEVAL_DIR": "Folder of TweetEval's emoji task (train and validation; bench_stickers skips it when unset).",
    "NO_OBP": "1: skip the Open Bandit Pipeline parity checks (tests and benchmarks).",
    "OBP_PYTHON": "The Python of the Open Bandit Pipeline's own venv (default .venv-obp/bin/python).",
    "TEST_REDIS_URL": "The Redis the tests use (default redis://127.0.0.1:6379/15; started when nothing answers).",
    "TEST_KAFKA_BOOTSTRAP": "Tests use this Kafka broker instead of starting Tansu.",
}


def unknown_variables(environ: dict[str, str]) -> list[str]:
    """`TASTEMAKER_*` variables that nothing reads, each with the closest known name if one is close."""
    known = {f.name.upper() for f in fields(Settings)} | set(OTHER_VARIABLES)
    out = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name[len(ENV_PREFIX) :] in known:
            continue
        close = difflib.get_close_matches(name[len(ENV_PREFIX) :], sorted(known), n=1)
        out.append(f"{name} (did you mean {ENV_PREFIX}{close[0]}?)" if close else name)
    return out


STRATEGIES = tuple(STRATEGY_PARAMETERS)
#: what the linear strategies learn on (`bandits.page.online_rows`)
LINEAR_FEATURES = ("engagement", "context")


def setting(default: Any, help: str, section: str) -> Any:
    """A `Settings` field with its documentation: `--help` and `docs/configuration.md` are made from it."""
    return field(default=default, metadata={"help": help, "section": section})


KAFKA, REDIS, API, SECURITY, HOME, MODELS, STICKERS, OUTCOMES, RELIABILITY, OPERATIONS = (
    "Kafka",
    "Redis",
    "gRPC API",
    "Security and privacy",
    "Home ranking",
    "Reward models and the registry",
    "Stickers",
    "Outcomes and rewards",
    "Reliability",
    "Operations",
)


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = setting(
        "", "Kafka bootstrap servers (host:port,...). Empty: `up` starts an embedded broker.", KAFKA
    )
    kafka_client: str = setting(
        "kafka-python", "Kafka adapter: kafka-python (pure Python) or confluent (librdkafka, faster).", KAFKA
    )
    kafka_compression: str = setting(
        "zstd", "Producer compression of every record batch: none, gzip, lz4 or zstd (both adapters).", KAFKA
    )
    kafka_security_protocol: str = setting(
        "PLAINTEXT", "Kafka connection security: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (both adapters).", KAFKA
    )
    kafka_sasl_mechanism: str = setting("", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.", KAFKA)
    kafka_sasl_username: str = setting("", "SASL user name.", KAFKA)
    kafka_sasl_password: str = setting("", "SASL password.", KAFKA)
    kafka_ssl_cafile: str = setting("", "PEM file of the CA that signed the brokers' certificates.", KAFKA)
    kafka_ssl_certfile: str = setting("", "PEM client certificate, for brokers that require mutual TLS.", KAFKA)
    kafka_ssl_keyfile: str = setting("", "PEM key of the client certificate.", KAFKA)
    topic_prefix: str = setting(
        "tastemaker", "Prefix of every topic: <prefix>.events, .decisions, .outcomes, .rewarded, .dlq ...", KAFKA
    )
    redis_url: str = setting(
        "",
        "Redis URL (redis://host:port/db), or redis+cluster://host:port,host:port for a Redis Cluster. "
        "Empty: `up` starts an embedded Redis.",
        REDIS,
    )
    redis_namespace: str = setting("tm", "Prefix of every Redis key.", REDIS)
    redis_wait_replicas: int = setting(
        0,
        "Replicas that must hold a stream worker's Redis writes before it commits their Kafka offsets "
        "(Redis WAIT; 0: off). Set 1 on a cluster, or a master's failover can lose acknowledged writes.",
        REDIS,
    )
    redis_wait_timeout_ms: int = setting(1000, "How long one WAIT may take, milliseconds.", REDIS)
    grpc_host: str = setting(
        "127.0.0.1",
        "Address the gRPC server binds; 0.0.0.0 for every interface (then TLS and tokens are required, "
        "or TASTEMAKER_INSECURE=1).",
        API,
    )
    grpc_port: int = setting(50051, "gRPC port (0: any free port).", API)
    grpc_workers: int = setting(16, "Threads answering RPCs in one serving process.", API)
    grpc_max_message_bytes: int = setting(4 * 1024 * 1024, "Largest request or response, bytes.", API)
    max_shelves_default: int = setting(10, "Shelves RankHome returns when the request does not say.", API)
    max_cards_default: int = setting(10, "Cards per shelf RankHome returns when the request does not say.", API)
    tls_cert: str = setting(
        "", "PEM certificate chain of the gRPC server (TLS; re-read when it changes or on SIGHUP).", SECURITY
    )
    tls_key: str = setting("", "PEM key of tls_cert.", SECURITY)
    tls_client_ca: str = setting(
        "", "PEM CA bundle: clients must present a certificate it signed (mutual TLS).", SECURITY
    )
    auth_tokens_file: str = setting(
        "", "Per-client bearer tokens and scopes (docs/security.md); empty: no authentication.", SECURITY
    )
    open_reflection: bool = setting(
        True, "gRPC reflection answers without a token (1) or only to admin clients (0).", SECURITY
    )
    insecure: bool = setting(False, "Listen beyond loopback without TLS and tokens anyway.", SECURITY)
    decision_key: str = setting(
        "",
        "Signs decision ids (>= 16 bytes, shared by every replica and the joiner): outcomes are taken only "
        "for decisions served to the same client within the reward window. Empty: random ids, all accepted "
        "(`serve` beyond loopback then refuses to start without --insecure).",
        SECURITY,
    )
    decision_key_file: str = setting(
        "",
        "A file holding the decision key instead (a mounted Secret; surrounding whitespace ignored).",
        SECURITY,
    )
    user_id_key: str = setting(
        "", "Pseudonymise user ids in Redis keys and decision logs with this key (keyed HMAC, >= 16 bytes).", SECURITY
    )
    logged_context_keys: str = setting(
        "*", "Request-context keys written to decision logs (comma-separated; * for all).", SECURITY
    )
    strategy: str = setting("epsilon-greedy", "Home exploration: " + ", ".join(STRATEGIES) + ".", HOME)
    epsilon: float = setting(0.1, "epsilon-greedy's exploration rate, in [0, 1].", HOME)
    temperature: float = setting(1.0, "softmax's temperature (> 0).", HOME)
    ucb_alpha: float = setting(1.0, "linucb's confidence width (> 0).", HOME)
    thompson_scale: float = setting(1.0, "thompson's posterior scale (> 0).", HOME)
    squarecb_gamma: float = setting(
        100.0, "squarecb's gamma: inverse-gap weighting of the first position (0 uniform, larger greedier).", HOME
    )
    linear_forget: float = setting(
        1.0,
        "The linear posterior's discount per rewarded decision (1: remember everything; 0.999: about the "
        "last 1,000 decisions weigh), applied by the learner.",
        HOME,
    )
    linear_features: str = setting(
        "engagement",
        "What linucb and thompson learn on: engagement ([1, log(1 + the user's engagement)] per candidate) or "
        "context (also the request's context and the user's activity crossed with the caller's candidate "
        "features and the explanation, hashed to TASTEMAKER_LINEAR_WIDTH columns; a posterior of its own in Redis). "
        "Serving and the learner must agree.",
        HOME,
    )
    linear_width: int = setting(62, "The hashed columns of TASTEMAKER_LINEAR_FEATURES=context, 1 to 254.", HOME)
    propensity_floor: float = setting(
        0.0, "Least probability of any candidate at any position, in [0, 0.1] (0: no floor).", HOME
    )
    reward_model: str = setting(
        "",
        "Reward-model artifact directory (`train reward-model`); empty: the built-in engagement-linear model.",
        MODELS,
    )
    model_registry: str = setting(
        "",
        "Registry directory: serving follows its current version (`models promote`; overrides reward_model).",
        MODELS,
    )
    model_refresh_s: float = setting(
        1.0, "How often serving checks the registry's current pointer and the linear posterior, seconds.", MODELS
    )
    shadow_model: str = setting(
        "", "A candidate artifact scored beside the live model on every request, logged never shown.", MODELS
    )
    shadow_mode: str = setting(
        "shadow", "shadow (logged, never shown) or apprentice (takes over once it agrees often enough).", MODELS
    )
    apprentice_agreement: float = setting(0.9, "Share of pages on which the apprentice must agree, in (0, 1].", MODELS)
    apprentice_window: int = setting(500, "Pages over which the apprentice's agreement is measured.", MODELS)
    sticker_model: str = setting(
        "", "Sticker bundle (`stickers train --out`); empty: SuggestStickers answers UNAVAILABLE.", STICKERS
    )
    sticker_candidates: int = setting(
        50, "Stickers the index hands to the re-rank (and the decision log), 1 to 500.", STICKERS
    )
    sticker_epsilon: float = setting(
        0.1,
        "SuggestStickers' epsilon-greedy rate (0: greedy, for evaluation); propensities are logged either way.",
        STICKERS,
    )
    sticker_rerank: str = setting(
        "learned",
        "The sticker re-rank: static (model score + 0.1 log(1 + sends)), learned (online from sends; static "
        "until it has learned) or side-by-side (half the users each; what `up --demo` runs unless set).",
        STICKERS,
    )
    sticker_forget: float = setting(
        0.999, "The learned re-rank's discount per rewarded sticker decision, in (0, 1].", STICKERS
    )
    reward_window_s: float = setting(30.0, "Seconds an outcome may follow its decision and still be joined.", OUTCOMES)
    default_reward: float = setting(0.0, "Reward of a decision no outcome followed within the window.", OUTCOMES)
    reward_min: float = setting(-1000.0, "Least valid reported reward; the joiner dead-letters others.", OUTCOMES)
    reward_max: float = setting(1000.0, "Largest valid reported reward.", OUTCOMES)
    feature_timeout_s: float = setting(0.05, "Budget of one feature read on the request path, seconds.", RELIABILITY)
    feature_breaker_failures: int = setting(
        3, "Feature-read failures in a row after which ranking skips Redis (non-personalised).", RELIABILITY
    )
    feature_breaker_probe_s: float = setting(1.0, "How often the open breaker probes Redis, seconds.", RELIABILITY)
    decision_queue_size: int = setting(
        10_000, "Decision logs waiting in memory for Kafka; when full, new ones are dropped and counted.", RELIABILITY
    )
    spool_path: str = setting(
        "",
        "The SQLite file where decision logs and outcomes wait for Kafka: crash-safe, survives a broker outage "
        "and a restart. Empty: <state_dir>/spool-<grpc_port>.db (in memory when the port is 0: no later process "
        "could find it). off: in memory, at most decision_queue_size records, the rest dropped and counted.",
        RELIABILITY,
    )
    state_dir: str = setting(
        "",
        "Where `serve` and `up` keep what must outlive the process (the spool). Empty: $XDG_STATE_HOME/tastemaker, "
        "else ~/.local/state/tastemaker.",
        RELIABILITY,
    )
    spool_max_records: int = setting(1_000_000, "Most records the spool holds.", RELIABILITY)
    shutdown_grace_s: float = setting(
        15.0, "`up` and `serve` stop within this many seconds of SIGTERM/SIGINT.", RELIABILITY
    )
    metrics_port: int = setting(0, "Prometheus metrics of the process on this port (0: off).", OPERATIONS)
    metrics_host: str = setting("127.0.0.1", "Address the metrics endpoint binds (0.0.0.0 in a container).", OPERATIONS)
    embedded_broker_max_mb: int = setting(
        1024, "`up` stops, with its report, once its embedded broker (all in memory) holds this many MB.", OPERATIONS
    )
    log_level: str = setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR.", OPERATIONS)

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
        if self.linear_features not in LINEAR_FEATURES:
            raise ConfigError(
                f"TASTEMAKER_LINEAR_FEATURES must be one of {', '.join(LINEAR_FEATURES)}, got {self.linear_features!r}"
            )
        if not 1 <= self.linear_width <= 254:
            raise ConfigError(f"TASTEMAKER_LINEAR_WIDTH must be in [1, 254], got {self.linear_width}")
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
        if self.decision_key.startswith(KEY_PLACEHOLDER):
            raise ConfigError("TASTEMAKER_DECISION_KEY is still the placeholder: make one with `tastemaker keygen`")
        if self.decision_key and self.decision_key_file:
            raise ConfigError("TASTEMAKER_DECISION_KEY and TASTEMAKER_DECISION_KEY_FILE: set one, not both")
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

    def state_directory(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir)
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "tastemaker"

    def spool_file(self) -> Path | None:
        """Where the publisher spools (None: in memory): TASTEMAKER_SPOOL_PATH, else the state
        directory's file for this port; in memory when told `off` or when the port is 0."""
        if self.spool_path == SPOOL_OFF:
            return None
        if self.spool_path:
            return Path(self.spool_path)
        if self.grpc_port == 0:
            return None
        return self.state_directory() / f"spool-{self.grpc_port}.db"

    def decision_key_bytes(self) -> bytes:
        """The decision key (b"": none), from TASTEMAKER_DECISION_KEY or the file _FILE names."""
        if not self.decision_key_file:
            return self.decision_key.encode()
        try:
            key = Path(self.decision_key_file).read_text(encoding="utf-8").strip().encode()
        except OSError as exc:
            raise ConfigError(f"TASTEMAKER_DECISION_KEY_FILE {self.decision_key_file}: {exc.strerror}") from None
        if len(key) < 16 or key.startswith(KEY_PLACEHOLDER.encode()):
            raise ConfigError(
                f"TASTEMAKER_DECISION_KEY_FILE {self.decision_key_file}: not a key of at least 16 bytes "
                "(make one with `tastemaker keygen`)"
            )
        return key


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{raw!r} is not a boolean")


@dataclass(frozen=True)
class SettingDoc:
    """One documented `TASTEMAKER_*` variable."""

    variable: str
    default: str
    section: str
    help: str


SECRET_FIELDS = frozenset({"kafka_sasl_password", "decision_key", "user_id_key"})

#: how the shipped manifests' placeholder secrets begin (refused as keys)
KEY_PLACEHOLDER = "CHANGE-ME"
#: TASTEMAKER_SPOOL_PATH's explicit opt-out: records wait in memory
SPOOL_OFF = "off"


def undocumented(cls: type = Settings) -> list[str]:
    """Fields of the settings dataclass `cls` without a help text or a section (a test keeps this empty)."""
    return [f.name for f in fields(cls) if not f.metadata.get("help") or not f.metadata.get("section")]


def setting_docs() -> list[SettingDoc]:
    """Every `Settings` field in declaration order, then the variables read outside it."""
    out = []
    for f in fields(Settings):
        default = f.default
        shown = ("1" if default else "0") if isinstance(default, bool) else str(default)
        out.append(
            SettingDoc(ENV_PREFIX + f.name.upper(), shown, f.metadata.get("section", ""), f.metadata.get("help", ""))
        )
    for name, text in OTHER_VARIABLES.items():
        out.append(SettingDoc(ENV_PREFIX + name, "", "Tests, benchmarks and tools", text))
    return out


def help_epilog(width: int = 100) -> str:
    """The `tastemaker --help` epilogue: every variable by section, with its default."""
    lines = ["environment (docs/configuration.md; flags override; `tastemaker settings` shows the values in force):"]
    section = None
    for doc in setting_docs():
        if doc.section != section:
            section = doc.section
            lines.append(f"  {section}:")
        default = f" [{doc.default}]" if doc.default else ""
        lines.append(f"    {doc.variable}{default}")
        lines.extend(textwrap.wrap(doc.help, width=width, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return "\n".join(lines) + "\n"


def configuration_markdown() -> str:
    """`docs/configuration.md`, generated (`tastemaker settings --markdown`; a test keeps it fresh)."""
    lines = [
        "# Configuration",
        "",
        "<!-- generated by `tastemaker settings --markdown > docs/configuration.md` from the help of each",
        "     field of `tastemaker/services/config.py:Settings`; edit the field, not this file -->",
        "",
        "Every process reads its settings from `TASTEMAKER_*` environment variables once, at start",
        "(command-line flags override them). An unknown `TASTEMAKER_*` variable is logged with the",
        "closest known name; a bad value stops the process with exit code 2 and a one-line reason.",
        "`tastemaker settings` prints the values in force (secrets masked).",
    ]
    section = None
    for doc in setting_docs():
        if doc.section != section:
            section = doc.section
            lines += ["", f"## {section}", "", "| Variable | Default | What it does |", "|---|---|---|"]
        default = f"`{doc.default}`" if doc.default else "(empty)"
        text = doc.help.replace("|", "\\|")
        lines.append(f"| `{doc.variable}` | {default} | {text} |")
    return "\n".join(lines) + "\n"


def settings_in_force(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) of every setting, secrets masked."""
    out = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        shown = ("set" if value else "") if f.name in SECRET_FIELDS else str(value)
        out.append((ENV_PREFIX + f.name.upper(), shown))
    return out
