from tastemaker.v1 import api_pb2 as _api_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserEvent(_message.Message):
    __slots__ = ("event_id", "user_id", "type", "item_id", "shelf_id", "event_time_ms", "value", "decision_id", "context", "listened_seconds", "track_length_seconds", "dwell_ms", "text", "language")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SHELF_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LISTENED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TRACK_LENGTH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DWELL_MS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    user_id: str
    type: str
    item_id: str
    shelf_id: str
    event_time_ms: int
    value: float
    decision_id: str
    context: _containers.ScalarMap[str, str]
    listened_seconds: float
    track_length_seconds: float
    dwell_ms: int
    text: str
    language: str
    def __init__(self, event_id: _Optional[str] = ..., user_id: _Optional[str] = ..., type: _Optional[str] = ..., item_id: _Optional[str] = ..., shelf_id: _Optional[str] = ..., event_time_ms: _Optional[int] = ..., value: _Optional[float] = ..., decision_id: _Optional[str] = ..., context: _Optional[_Mapping[str, str]] = ..., listened_seconds: _Optional[float] = ..., track_length_seconds: _Optional[float] = ..., dwell_ms: _Optional[int] = ..., text: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class Exploration(_message.Message):
    __slots__ = ("strategy", "epsilon", "propensity_method", "monte_carlo_samples", "propensity_error_bound", "propensity_floor", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_METHOD_FIELD_NUMBER: _ClassVar[int]
    MONTE_CARLO_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_ERROR_BOUND_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FLOOR_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    epsilon: float
    propensity_method: str
    monte_carlo_samples: int
    propensity_error_bound: float
    propensity_floor: float
    parameters: _containers.ScalarMap[str, float]
    def __init__(self, strategy: _Optional[str] = ..., epsilon: _Optional[float] = ..., propensity_method: _Optional[str] = ..., monte_carlo_samples: _Optional[int] = ..., propensity_error_bound: _Optional[float] = ..., propensity_floor: _Optional[float] = ..., parameters: _Optional[_Mapping[str, float]] = ...) -> None: ...

class CandidateScores(_message.Message):
    __slots__ = ("item_ids", "scores")
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    scores: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, item_ids: _Optional[_Iterable[str]] = ..., scores: _Optional[_Iterable[float]] = ...) -> None: ...

class LoggedCard(_message.Message):
    __slots__ = ("card_id", "position", "score", "propensity")
    CARD_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    card_id: str
    position: int
    score: float
    propensity: float
    def __init__(self, card_id: _Optional[str] = ..., position: _Optional[int] = ..., score: _Optional[float] = ..., propensity: _Optional[float] = ...) -> None: ...

class LoggedShelf(_message.Message):
    __slots__ = ("shelf_id", "position", "score", "propensity", "cards", "cards_ranking_propensity", "card_candidates", "explanation_id", "explanation_propensity", "explanation_candidates")
    SHELF_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    CARDS_FIELD_NUMBER: _ClassVar[int]
    CARDS_RANKING_PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    CARD_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    shelf_id: str
    position: int
    score: float
    propensity: float
    cards: _containers.RepeatedCompositeFieldContainer[LoggedCard]
    cards_ranking_propensity: float
    card_candidates: CandidateScores
    explanation_id: str
    explanation_propensity: float
    explanation_candidates: CandidateScores
    def __init__(self, shelf_id: _Optional[str] = ..., position: _Optional[int] = ..., score: _Optional[float] = ..., propensity: _Optional[float] = ..., cards: _Optional[_Iterable[_Union[LoggedCard, _Mapping]]] = ..., cards_ranking_propensity: _Optional[float] = ..., card_candidates: _Optional[_Union[CandidateScores, _Mapping]] = ..., explanation_id: _Optional[str] = ..., explanation_propensity: _Optional[float] = ..., explanation_candidates: _Optional[_Union[CandidateScores, _Mapping]] = ...) -> None: ...

class DecisionLog(_message.Message):
    __slots__ = ("decision_id", "request_id", "user_id", "surface", "served_at_ms", "policy", "model_version", "exploration", "context", "feature_names", "feature_values", "candidates", "shelf_candidates", "shown", "ranking_propensity", "max_shelves", "max_cards_per_shelf", "reward_window_ms", "pinned_shelves", "excluded_item_ids", "shadow", "client_id", "layout", "packed", "deferred")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SURFACE_FIELD_NUMBER: _ClassVar[int]
    SERVED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPLORATION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VALUES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    SHELF_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    SHOWN_FIELD_NUMBER: _ClassVar[int]
    RANKING_PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SHELVES_FIELD_NUMBER: _ClassVar[int]
    MAX_CARDS_PER_SHELF_FIELD_NUMBER: _ClassVar[int]
    REWARD_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    PINNED_SHELVES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    request_id: str
    user_id: str
    surface: str
    served_at_ms: int
    policy: str
    model_version: str
    exploration: Exploration
    context: _containers.ScalarMap[str, str]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    feature_values: _containers.RepeatedScalarFieldContainer[float]
    candidates: _containers.RepeatedCompositeFieldContainer[_api_pb2.Shelf]
    shelf_candidates: CandidateScores
    shown: _containers.RepeatedCompositeFieldContainer[LoggedShelf]
    ranking_propensity: float
    max_shelves: int
    max_cards_per_shelf: int
    reward_window_ms: int
    pinned_shelves: _containers.RepeatedCompositeFieldContainer[_api_pb2.PinnedShelf]
    excluded_item_ids: _containers.RepeatedScalarFieldContainer[str]
    shadow: ShadowDecision
    client_id: str
    layout: int
    packed: PackedPage
    deferred: bool
    def __init__(self, decision_id: _Optional[str] = ..., request_id: _Optional[str] = ..., user_id: _Optional[str] = ..., surface: _Optional[str] = ..., served_at_ms: _Optional[int] = ..., policy: _Optional[str] = ..., model_version: _Optional[str] = ..., exploration: _Optional[_Union[Exploration, _Mapping]] = ..., context: _Optional[_Mapping[str, str]] = ..., feature_names: _Optional[_Iterable[str]] = ..., feature_values: _Optional[_Iterable[float]] = ..., candidates: _Optional[_Iterable[_Union[_api_pb2.Shelf, _Mapping]]] = ..., shelf_candidates: _Optional[_Union[CandidateScores, _Mapping]] = ..., shown: _Optional[_Iterable[_Union[LoggedShelf, _Mapping]]] = ..., ranking_propensity: _Optional[float] = ..., max_shelves: _Optional[int] = ..., max_cards_per_shelf: _Optional[int] = ..., reward_window_ms: _Optional[int] = ..., pinned_shelves: _Optional[_Iterable[_Union[_api_pb2.PinnedShelf, _Mapping]]] = ..., excluded_item_ids: _Optional[_Iterable[str]] = ..., shadow: _Optional[_Union[ShadowDecision, _Mapping]] = ..., client_id: _Optional[str] = ..., layout: _Optional[int] = ..., packed: _Optional[_Union[PackedPage, _Mapping]] = ..., deferred: bool = ...) -> None: ...

class PackedPage(_message.Message):
    __slots__ = ("ids", "cards_per_shelf", "feature_schema", "feature_counts", "feature_values", "ranked_shelves", "ranked_shelf_scores", "shown_shelves", "shown_scores", "shown_propensities", "shown_cards_ranking_propensities", "shown_positions", "card_candidates_whole", "card_candidate_counts", "card_candidates", "card_scores", "shown_card_counts", "shown_cards", "shown_card_propensities", "shown_card_positions")
    IDS_FIELD_NUMBER: _ClassVar[int]
    CARDS_PER_SHELF_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VALUES_FIELD_NUMBER: _ClassVar[int]
    RANKED_SHELVES_FIELD_NUMBER: _ClassVar[int]
    RANKED_SHELF_SCORES_FIELD_NUMBER: _ClassVar[int]
    SHOWN_SHELVES_FIELD_NUMBER: _ClassVar[int]
    SHOWN_SCORES_FIELD_NUMBER: _ClassVar[int]
    SHOWN_PROPENSITIES_FIELD_NUMBER: _ClassVar[int]
    SHOWN_CARDS_RANKING_PROPENSITIES_FIELD_NUMBER: _ClassVar[int]
    SHOWN_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    CARD_CANDIDATES_WHOLE_FIELD_NUMBER: _ClassVar[int]
    CARD_CANDIDATE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    CARD_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CARD_SCORES_FIELD_NUMBER: _ClassVar[int]
    SHOWN_CARD_COUNTS_FIELD_NUMBER: _ClassVar[int]
    SHOWN_CARDS_FIELD_NUMBER: _ClassVar[int]
    SHOWN_CARD_PROPENSITIES_FIELD_NUMBER: _ClassVar[int]
    SHOWN_CARD_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    ids: bytes
    cards_per_shelf: _containers.RepeatedScalarFieldContainer[int]
    feature_schema: str
    feature_counts: _containers.RepeatedScalarFieldContainer[int]
    feature_values: _containers.RepeatedScalarFieldContainer[float]
    ranked_shelves: _containers.RepeatedScalarFieldContainer[int]
    ranked_shelf_scores: _containers.RepeatedScalarFieldContainer[float]
    shown_shelves: _containers.RepeatedScalarFieldContainer[int]
    shown_scores: _containers.RepeatedScalarFieldContainer[float]
    shown_propensities: _containers.RepeatedScalarFieldContainer[float]
    shown_cards_ranking_propensities: _containers.RepeatedScalarFieldContainer[float]
    shown_positions: _containers.RepeatedScalarFieldContainer[int]
    card_candidates_whole: _containers.RepeatedScalarFieldContainer[bool]
    card_candidate_counts: _containers.RepeatedScalarFieldContainer[int]
    card_candidates: _containers.RepeatedScalarFieldContainer[int]
    card_scores: _containers.RepeatedScalarFieldContainer[float]
    shown_card_counts: _containers.RepeatedScalarFieldContainer[int]
    shown_cards: _containers.RepeatedScalarFieldContainer[int]
    shown_card_propensities: _containers.RepeatedScalarFieldContainer[float]
    shown_card_positions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ids: _Optional[bytes] = ..., cards_per_shelf: _Optional[_Iterable[int]] = ..., feature_schema: _Optional[str] = ..., feature_counts: _Optional[_Iterable[int]] = ..., feature_values: _Optional[_Iterable[float]] = ..., ranked_shelves: _Optional[_Iterable[int]] = ..., ranked_shelf_scores: _Optional[_Iterable[float]] = ..., shown_shelves: _Optional[_Iterable[int]] = ..., shown_scores: _Optional[_Iterable[float]] = ..., shown_propensities: _Optional[_Iterable[float]] = ..., shown_cards_ranking_propensities: _Optional[_Iterable[float]] = ..., shown_positions: _Optional[_Iterable[int]] = ..., card_candidates_whole: _Optional[_Iterable[bool]] = ..., card_candidate_counts: _Optional[_Iterable[int]] = ..., card_candidates: _Optional[_Iterable[int]] = ..., card_scores: _Optional[_Iterable[float]] = ..., shown_card_counts: _Optional[_Iterable[int]] = ..., shown_cards: _Optional[_Iterable[int]] = ..., shown_card_propensities: _Optional[_Iterable[float]] = ..., shown_card_positions: _Optional[_Iterable[int]] = ...) -> None: ...

class ShadowDecision(_message.Message):
    __slots__ = ("model_version", "mode", "shown", "ranking_propensity", "agrees")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SHOWN_FIELD_NUMBER: _ClassVar[int]
    RANKING_PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    AGREES_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    mode: str
    shown: _containers.RepeatedCompositeFieldContainer[LoggedShelf]
    ranking_propensity: float
    agrees: bool
    def __init__(self, model_version: _Optional[str] = ..., mode: _Optional[str] = ..., shown: _Optional[_Iterable[_Union[LoggedShelf, _Mapping]]] = ..., ranking_propensity: _Optional[float] = ..., agrees: bool = ...) -> None: ...

class Outcome(_message.Message):
    __slots__ = ("outcome_id", "decision_id", "item_id", "reward", "event_type", "reported_at_ms", "client_id", "activation")
    OUTCOME_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    outcome_id: str
    decision_id: str
    item_id: str
    reward: float
    event_type: str
    reported_at_ms: int
    client_id: str
    activation: bool
    def __init__(self, outcome_id: _Optional[str] = ..., decision_id: _Optional[str] = ..., item_id: _Optional[str] = ..., reward: _Optional[float] = ..., event_type: _Optional[str] = ..., reported_at_ms: _Optional[int] = ..., client_id: _Optional[str] = ..., activation: bool = ...) -> None: ...

class RewardedDecision(_message.Message):
    __slots__ = ("decision", "outcomes", "reward", "defaulted", "joined_at_ms", "activated")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    DEFAULTED_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_FIELD_NUMBER: _ClassVar[int]
    decision: DecisionLog
    outcomes: _containers.RepeatedCompositeFieldContainer[Outcome]
    reward: float
    defaulted: bool
    joined_at_ms: int
    activated: bool
    def __init__(self, decision: _Optional[_Union[DecisionLog, _Mapping]] = ..., outcomes: _Optional[_Iterable[_Union[Outcome, _Mapping]]] = ..., reward: _Optional[float] = ..., defaulted: bool = ..., joined_at_ms: _Optional[int] = ..., activated: bool = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("reason", "original_value", "original_key", "topic", "partition", "offset", "failed_at_ms", "stage")
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_VALUE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_KEY_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    original_value: bytes
    original_key: bytes
    topic: str
    partition: int
    offset: int
    failed_at_ms: int
    stage: str
    def __init__(self, reason: _Optional[str] = ..., original_value: _Optional[bytes] = ..., original_key: _Optional[bytes] = ..., topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., failed_at_ms: _Optional[int] = ..., stage: _Optional[str] = ...) -> None: ...
