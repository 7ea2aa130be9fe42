"""The composition root: wires real adapters (Redis, Kafka) into the application services."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis

from tastemaker.bandits.catalog import Catalog
from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.online_features import OnlineFeatures
from tastemaker.bandits.reward_models import EngagementScorer, RewardModel
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.sticker_rerank import LEVEL as STICKER_LEVEL
from tastemaker.bandits.sticker_rerank import RERANK_DIM, LearnedReRank
from tastemaker.bandits.strategies import LINEAR, EpsilonGreedy, LinearState, Strategy, strategy_from
from tastemaker.features import keys
from tastemaker.features.dead_letters import DeadLetterLedger
from tastemaker.features.feature_writer import FeatureWriter
from tastemaker.features.joiner import RewardJoiner
from tastemaker.features.learner import LinearLearner
from tastemaker.features.linear_store import LinearStateStore, SharedLinearStates
from tastemaker.features.processor import ProcessorStats, StreamProcessor
from tastemaker.features.redis_connect import Fence, connect
from tastemaker.features.store import STICKER_SENDS, FeatureStore
from tastemaker.features.topics import Topics
from tastemaker.messaging import (
    KafkaSecurity,
    RecoveringProducer,
    ensure_topics,
    make_consumer,
    make_producer,
    read_topic_to_end,
)
from tastemaker.models.artifacts import ArtifactError, load_reward_model
from tastemaker.models.registry import STICKERS_KIND, RegistryError, RegistryReader
from tastemaker.records.ids import DecisionIds
from tastemaker.services.breaker import CircuitBreaker
from tastemaker.services.config import ConfigError, Settings
from tastemaker.services.device_decisions import DeviceDecisionIntake
from tastemaker.services.feedback import FeedbackService
from tastemaker.services.grpc_server import ServingServer, build_server
from tastemaker.services.home import HomeRankingService
from tastemaker.services.limits import MAX_DEVICE_DECISION_AGE_MS
from tastemaker.services.model_watcher import ModelWatcher
from tastemaker.services.privacy import LogPolicy
from tastemaker.services.publisher import BackgroundPublisher
from tastemaker.services.security import ServerSecurity
from tastemaker.services.shadow import ShadowRunner
from tastemaker.services.spool import Spool
from tastemaker.services.stickers import StickerReRanking, StickerService

log = logging.getLogger(__name__)


_CLIENTS: dict[tuple[str, float | None], redis.Redis] = {}
_CLIENTS_LOCK = threading.Lock()


def redis_client(settings: Settings, request_path: bool = False) -> redis.Redis:
    """This process's Redis client (one connection pool) for a URL: the request path's, whose every
    call has the short `feature_timeout_s` budget, or the background loops' (no timeout: a big
    batch may take a while)."""
    timeout = settings.feature_timeout_s if request_path else None
    key = (settings.redis_url, timeout)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = connect(settings.redis_url, socket_timeout=timeout)
        return _CLIENTS[key]


def kafka_security_of(settings: Settings) -> KafkaSecurity:
    """TLS and SASL for every Kafka client of the process (`messaging.security`)."""
    try:
        return KafkaSecurity(
            settings.kafka_security_protocol,
            settings.kafka_sasl_mechanism,
            settings.kafka_sasl_username,
            settings.kafka_sasl_password,
            settings.kafka_ssl_cafile,
            settings.kafka_ssl_certfile,
            settings.kafka_ssl_keyfile,
        )
    except ValueError as exc:
        raise ConfigError(f"TASTEMAKER_KAFKA_*: {exc}") from None


def producer_for(settings: Settings, client_id: str) -> RecoveringProducer:
    """A producer of the configured adapter, with the configured Kafka security and compression."""
    return make_producer(
        settings.kafka_client,
        settings.kafka_bootstrap,
        client_id,
        kafka_security_of(settings),
        compression=settings.kafka_compression,
    )


def log_policy_of(settings: Settings) -> LogPolicy:
    """Pseudonymous user ids and the logged context keys (`services.privacy`)."""
    return LogPolicy.parse(settings.user_id_key, settings.logged_context_keys)


def decision_ids_of(settings: Settings) -> DecisionIds:
    """Signed decision ids when TASTEMAKER_DECISION_KEY is set (`records.ids`)."""
    return DecisionIds(settings.decision_key_bytes())


def fence_of(settings: Settings) -> Fence:
    """The stream workers' replication fence (`TASTEMAKER_REDIS_WAIT_REPLICAS`; off at 0)."""
    return Fence(settings.redis_wait_replicas, settings.redis_wait_timeout_ms)


def consumer_group(settings: Settings, role: str) -> str:
    """The consumer group of `role` (`Topics.consumer_group`)."""
    return Topics(settings.topic_prefix).consumer_group(role)


def default_catalog() -> Catalog:
    """The bundled catalog: the simulated world's shelves and cards (seed 0)."""
    return SimulatedWorld().catalog()


@dataclass
class Serving:
    server: ServingServer
    home: HomeRankingService
    feedback: FeedbackService
    publisher: BackgroundPublisher
    breaker: CircuitBreaker
    stickers: StickerService | None = None
    #: set on stop: ends the background watchers
    stopping: threading.Event = field(default_factory=threading.Event)
    #: ReportDeviceDecisions beside the sticker model (None without one)
    device_decisions: DeviceDecisionIntake | None = None

    def stop(self, grace_s: float = 5.0) -> None:
        self.stopping.set()
        self.server.stop(grace_s)
        self.publisher.close()


def strategy_for(settings: Settings, level: str, shared: SharedLinearStates | None = None) -> Strategy:
    """The configured exploration strategy for one level (shelves, cards or explanations); linear
    strategies rank with that level's shared posterior (over `online_features_of(settings)`)."""
    parameters = {
        "epsilon": settings.epsilon,
        "temperature": settings.temperature,
        "alpha": settings.ucb_alpha,
        "scale": settings.thompson_scale,
        "gamma": settings.squarecb_gamma,
    }
    online = online_features_of(settings)
    state = shared.states[level] if shared is not None else LinearState(dim=2 if online is None else online.dim)
    return strategy_from(settings.strategy, parameters, state)


def reward_model_for(settings: Settings) -> RewardModel:
    """The configured reward model: an artifact directory, or the built-in engagement-linear model."""
    if not settings.reward_model:
        return EngagementScorer(EngagementLinearModel())
    try:
        model = load_reward_model(Path(settings.reward_model))
    except ArtifactError as exc:
        raise ConfigError(f"TASTEMAKER_REWARD_MODEL: {exc}") from exc
    log.info("reward model %s from %s", model.version, settings.reward_model)
    return model


def sticker_service_for(
    settings: Settings, publisher: BackgroundPublisher, topic: str, client: redis.Redis, stop: threading.Event
) -> StickerService | None:
    """SuggestStickers from the registry's current sticker bundle (followed from then on, swapped
    without a restart) or else the configured bundle; None when there is neither (the RPC then says
    how to get one)."""
    from tastemaker.stickers.bundle import load_bundle
    from tastemaker.stickers.encoder import EncoderError

    registry = RegistryReader(Path(settings.model_registry), STICKERS_KIND) if settings.model_registry else None
    current = registry.current() if registry is not None else None
    if registry is not None and current is not None:
        source, setting = registry.path(current), "TASTEMAKER_MODEL_REGISTRY"
    elif settings.sticker_model:
        source, setting = Path(settings.sticker_model), "TASTEMAKER_STICKER_MODEL"
    else:
        return None
    try:
        bundle = load_bundle(source)
    except (EncoderError, ValueError, OSError) as exc:
        raise ConfigError(f"{setting}: {source}: {exc}") from exc
    log.info("stickers: encoder %s, %d stickers (from %s)", bundle.encoder.version, len(bundle.index.index), source)
    device = bundle.device_bundle
    if device is not None and device.is_file():
        log.info("stickers: GetDeviceBundle serves %s (%d bytes)", device, device.stat().st_size)
    else:
        log.info("stickers: no device bundle beside the model (`tastemaker stickers export-device --model %s`)", source)
    # read under the pseudonym the stream processor stores the user under (TASTEMAKER_USER_ID_KEY)
    store = FeatureStore(client, namespace=settings.redis_namespace, pseudonyms=log_policy_of(settings).pseudonyms)

    def sends(user_id: str, sticker_ids: Sequence[str]) -> np.ndarray:
        return store.read_item_counts(user_id, STICKER_SENDS, sticker_ids)

    rerank = StickerReRanking("static")
    if settings.sticker_rerank != "static":
        shared = SharedLinearStates(sticker_linear_store(settings, client), settings.model_refresh_s, [STICKER_LEVEL])
        rerank = StickerReRanking(
            settings.sticker_rerank, LearnedReRank(shared.states[STICKER_LEVEL]), shared.maybe_refresh
        )
    service = StickerService(
        bundle,
        EpsilonGreedy(settings.sticker_epsilon),
        publisher.publish,
        topic,
        engagement=sends,
        decision_ids=decision_ids_of(settings),
        reward_window_ms=int(settings.reward_window_s * 1000),
        log_policy=log_policy_of(settings),
        candidates=settings.sticker_candidates,
        rerank=rerank,
    )
    if registry is not None:
        watcher = ModelWatcher(
            registry,
            service.swap,
            settings.model_refresh_s,
            load=load_bundle,
            errors=(EncoderError, RegistryError, ValueError, OSError),
            serving=current,
        )
        watcher.poll_in_background(stop)  # a bundle takes seconds to load: never on a request
    return service


def device_decision_intake(
    settings: Settings, stickers: StickerService, publisher: BackgroundPublisher, topics: Topics, client: redis.Redis
) -> DeviceDecisionIntake:
    """ReportDeviceDecisions beside the sticker model: each (client, device decision id) claimed
    once in Redis for as long as an upload may come late."""
    keep_s = MAX_DEVICE_DECISION_AGE_MS // 1000 + 24 * 3600

    def claim(client_id: str, device_decision_id: str) -> bool:
        key = keys.device_decision(settings.redis_namespace, client_id, device_decision_id)
        return bool(client.set(key, b"1", nx=True, ex=keep_s))

    return DeviceDecisionIntake(
        publisher.publish,
        topics.decisions,
        topics.outcomes,
        claim,
        stickers.known_stickers,
        decision_ids=decision_ids_of(settings),
        log_policy=log_policy_of(settings),
        reward_window_ms=int(settings.reward_window_s * 1000),
    )


def shadow_for(settings: Settings) -> ShadowRunner | None:
    """The configured shadow or apprentice model, or None."""
    if not settings.shadow_model:
        return None
    try:
        return ShadowRunner(
            load_reward_model(Path(settings.shadow_model)),
            settings.shadow_mode,
            settings.apprentice_agreement,
            settings.apprentice_window,
        )
    except (ArtifactError, ValueError) as exc:
        raise ConfigError(f"TASTEMAKER_SHADOW_MODEL: {exc}") from exc


def _spool(settings: Settings) -> Spool | None:
    path = settings.spool_file()
    if path is None and settings.spool_path:  # told `off`: the operator's choice, said at every start
        log.warning(
            "TASTEMAKER_SPOOL_PATH=off: records wait for Kafka in memory, at most %d, then dropped",
            settings.decision_queue_size,
        )
        return None
    if path is None:
        log.info("an ephemeral port (0) has no spool of its own: records wait for Kafka in memory")
        return None
    log.info("records wait for Kafka in the spool %s", path)
    return Spool(path, settings.spool_max_records)


def build_serving(
    settings: Settings, catalog: Catalog | None = None, seed: int | None = None, reuse_port: bool = False
) -> Serving:
    """Everything one serving process needs; `reuse_port` when it is one of `serve --workers N`."""
    topics = Topics(settings.topic_prefix)
    security = ServerSecurity.from_settings(settings)  # refused before anything starts
    # the request path's Redis: every read within its own short budget, behind a circuit breaker
    client = redis_client(settings, request_path=True)
    breaker = CircuitBreaker(
        client.ping, settings.feature_breaker_failures, settings.feature_breaker_probe_s, name="feature store"
    )
    publisher = BackgroundPublisher(
        producer_for(settings, "tastemaker-serving"),
        max_queued=settings.decision_queue_size,
        spool=_spool(settings),
    )
    shared = None
    hooks: list[Callable[[], None]] = []
    if settings.strategy in LINEAR:
        shared = SharedLinearStates(home_linear_store(settings, client))
        shared.maybe_refresh()
        hooks.append(shared.maybe_refresh)  # pick up the shared posterior, at most once a second
    built: list[HomeRankingService] = []  # the service below, once built, for the watcher's swaps
    watcher = None
    if settings.model_registry:
        # swaps the model of the service built below (the one change a service takes while serving)
        watcher = ModelWatcher(
            RegistryReader(Path(settings.model_registry)),
            lambda model: built[0].set_model(model),
            settings.model_refresh_s,
        )
        hooks.append(watcher.maybe_swap)

    def before_rank() -> None:
        for hook in hooks:
            hook()

    home = HomeRankingService(
        features=FeatureStore(
            client, namespace=settings.redis_namespace, pseudonyms=log_policy_of(settings).pseudonyms
        ),
        catalog=catalog or default_catalog(),
        model=reward_model_for(settings),
        strategy=strategy_for(settings, "shelf", shared),
        card_strategy=strategy_for(settings, "card", shared),
        explanation_strategy=strategy_for(settings, "explanation", shared),
        online=online_features_of(settings),
        propensity_floor=settings.propensity_floor,
        before_rank=before_rank if hooks else None,
        shadow=shadow_for(settings),
        publish=publisher.publish,
        decisions_topic=topics.decisions,
        default_max_shelves=settings.max_shelves_default,
        default_max_cards=settings.max_cards_default,
        reward_window_s=settings.reward_window_s,
        rng=np.random.default_rng(seed),
        breaker=breaker,
        decision_ids=decision_ids_of(settings),
        log_policy=log_policy_of(settings),
    )
    built.append(home)
    if watcher is not None:
        watcher.maybe_swap()  # serve the registry's current version from the first request
    feedback = FeedbackService(
        publisher.publish,
        topics.outcomes,
        reward_range=(settings.reward_min, settings.reward_max),
        decision_ids=decision_ids_of(settings),
    )
    stopping = threading.Event()
    stickers = sticker_service_for(settings, publisher, topics.decisions, client, stopping)
    device_decisions = None
    if stickers is not None:
        device_decisions = device_decision_intake(settings, stickers, publisher, topics, client)
    try:
        server = build_server(
            home,
            feedback,
            host=settings.grpc_host,
            port=settings.grpc_port,
            max_workers=settings.grpc_workers,
            max_message_bytes=settings.grpc_max_message_bytes,
            stickers=stickers,
            reuse_port=reuse_port,
            security=security,
            device_decisions=device_decisions,
        )
    except BaseException:
        # e.g. the port is taken: close the Kafka producer now, before the broker it talks to goes away
        stopping.set()
        publisher.close()
        raise
    return Serving(server, home, feedback, publisher, breaker, stickers, stopping, device_decisions)


def build_stream_processor(
    settings: Settings, instance: str | None = None, on_status: Callable[[ProcessorStats], None] | None = None
) -> StreamProcessor:
    topics = Topics(settings.topic_prefix)
    consumer = make_consumer(
        settings.kafka_client,
        settings.kafka_bootstrap,
        [topics.events],
        consumer_group(settings, "features"),
        "tastemaker-features",
        kafka_security_of(settings),
    )
    client = redis_client(settings)
    ledger = DeadLetterLedger(
        client,
        settings.redis_namespace,
        producer_for(settings, "tastemaker-features-dlq"),
        topics.events_dlq,
        topics.events,
        scan_dlq=lambda: read_topic_to_end(
            settings.kafka_bootstrap, topics.events_dlq, security=kafka_security_of(settings)
        ),
        fence=fence_of(settings),
    )
    return StreamProcessor(
        consumer,
        FeatureWriter(
            client,
            namespace=settings.redis_namespace,
            wait_replicas=settings.redis_wait_replicas,
            wait_timeout_ms=settings.redis_wait_timeout_ms,
            pseudonyms=log_policy_of(settings).pseudonyms,
        ),
        ledger,
        status=client,
        namespace=settings.redis_namespace,
        instance=instance,
        on_status=on_status,
    )


def build_joiner(settings: Settings) -> RewardJoiner:
    topics = Topics(settings.topic_prefix)
    consumer = make_consumer(
        settings.kafka_client,
        settings.kafka_bootstrap,
        [topics.decisions, topics.outcomes],
        consumer_group(settings, "joiner"),
        "tastemaker-joiner",
        kafka_security_of(settings),
    )
    return RewardJoiner(
        consumer,
        redis_client(settings),
        producer_for(settings, "tastemaker-joiner"),
        topics,
        namespace=settings.redis_namespace,
        default_reward=settings.default_reward,
        reward_range=(settings.reward_min, settings.reward_max),
        fence=fence_of(settings),
        decision_ids=decision_ids_of(settings),
    )


def build_learner(settings: Settings) -> LinearLearner:
    """The online learner of the linear strategies and the sticker re-rank: tastemaker.rewarded →
    the shared posteriors."""
    topics = Topics(settings.topic_prefix)
    consumer = make_consumer(
        settings.kafka_client,
        settings.kafka_bootstrap,
        [topics.rewarded],
        consumer_group(settings, "learner"),
        "tastemaker-learner",
        kafka_security_of(settings),
    )
    store = home_linear_store(settings, redis_client(settings))
    producer = producer_for(settings, "tastemaker-learner")
    stickers = sticker_linear_store(settings, redis_client(settings)) if settings.sticker_rerank != "static" else None
    return LinearLearner(consumer, store, producer, topics.events_dlq, stickers, online_features_of(settings))


def online_features_of(settings: Settings) -> OnlineFeatures | None:
    """What the linear strategies learn on (TASTEMAKER_LINEAR_FEATURES): None for [1, log(1 + engagement)]."""
    return OnlineFeatures(settings.linear_width) if settings.linear_features == "context" else None


def home_linear_store(settings: Settings, client: redis.Redis) -> LinearStateStore:
    """The home levels' shared posterior: of width 2, or `OnlineFeatures`' under a key of its own."""
    online = online_features_of(settings)
    return LinearStateStore(
        client, settings.redis_namespace, dim=2 if online is None else online.dim, forget=settings.linear_forget,
        fence=fence_of(settings), variant="" if online is None else f"context{online.width}",
    )  # fmt: skip


def sticker_linear_store(settings: Settings, client: redis.Redis) -> LinearStateStore:
    """The learned sticker re-rank's posterior in Redis (`bandits/sticker_rerank.py`)."""
    return LinearStateStore(
        client, settings.redis_namespace, dim=RERANK_DIM, forget=settings.sticker_forget, fence=fence_of(settings)
    )


def prepare_topics(settings: Settings) -> None:
    ensure_topics(settings.kafka_bootstrap, Topics(settings.topic_prefix).all(), security=kafka_security_of(settings))


@dataclass
class Workers:
    """Background loops (stream processor, joiner, learner) on threads sharing one stop flag.

    A loop that raises is logged, counted in `restarts` (and the metrics) and started again after
    a second: a dead thread never leaves the process serving with, say, a frozen posterior."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)

    def start(self, name: str, loop: Callable[[threading.Event], object]) -> None:
        self.restarts.setdefault(name, 0)

        def supervised() -> None:
            while not self.stop_event.is_set():
                try:
                    loop(self.stop_event)
                    return
                except Exception:
                    self.restarts[name] += 1
                    log.exception("worker %s died (restart %d); starting it again in 1 s", name, self.restarts[name])
                    self.stop_event.wait(1.0)

        thread = threading.Thread(target=supervised, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Ask every loop to stop and wait up to `timeout_s` in all; False if one is still running."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self.threads if t.is_alive()]
        if stuck:
            log.error("workers still running after %.0f s: %s", timeout_s, ", ".join(stuck))
        return not stuck
