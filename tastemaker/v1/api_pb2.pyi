from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Shelf(_message.Message):
    __slots__ = ("shelf_id", "card_ids", "explanation_ids", "features", "card_features")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class CardFeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Features
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Features, _Mapping]] = ...) -> None: ...
    SHELF_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_IDS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_IDS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CARD_FEATURES_FIELD_NUMBER: _ClassVar[int]
    shelf_id: str
    card_ids: _containers.RepeatedScalarFieldContainer[str]
    explanation_ids: _containers.RepeatedScalarFieldContainer[str]
    features: _containers.ScalarMap[str, float]
    card_features: _containers.MessageMap[str, Features]
    def __init__(self, shelf_id: _Optional[str] = ..., card_ids: _Optional[_Iterable[str]] = ..., explanation_ids: _Optional[_Iterable[str]] = ..., features: _Optional[_Mapping[str, float]] = ..., card_features: _Optional[_Mapping[str, Features]] = ...) -> None: ...

class Features(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.ScalarMap[str, float]
    def __init__(self, values: _Optional[_Mapping[str, float]] = ...) -> None: ...

class RankHomeRequest(_message.Message):
    __slots__ = ("user_id", "context", "candidates", "max_shelves", "max_cards_per_shelf", "request_id", "pinned_shelves", "excluded_item_ids", "defer_activation")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    MAX_SHELVES_FIELD_NUMBER: _ClassVar[int]
    MAX_CARDS_PER_SHELF_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PINNED_SHELVES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    DEFER_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    context: _containers.ScalarMap[str, str]
    candidates: _containers.RepeatedCompositeFieldContainer[Shelf]
    max_shelves: int
    max_cards_per_shelf: int
    request_id: str
    pinned_shelves: _containers.RepeatedCompositeFieldContainer[PinnedShelf]
    excluded_item_ids: _containers.RepeatedScalarFieldContainer[str]
    defer_activation: bool
    def __init__(self, user_id: _Optional[str] = ..., context: _Optional[_Mapping[str, str]] = ..., candidates: _Optional[_Iterable[_Union[Shelf, _Mapping]]] = ..., max_shelves: _Optional[int] = ..., max_cards_per_shelf: _Optional[int] = ..., request_id: _Optional[str] = ..., pinned_shelves: _Optional[_Iterable[_Union[PinnedShelf, _Mapping]]] = ..., excluded_item_ids: _Optional[_Iterable[str]] = ..., defer_activation: bool = ...) -> None: ...

class PinnedShelf(_message.Message):
    __slots__ = ("shelf_id", "position")
    SHELF_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    shelf_id: str
    position: int
    def __init__(self, shelf_id: _Optional[str] = ..., position: _Optional[int] = ...) -> None: ...

class RankedCard(_message.Message):
    __slots__ = ("card_id", "score", "propensity")
    CARD_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    card_id: str
    score: float
    propensity: float
    def __init__(self, card_id: _Optional[str] = ..., score: _Optional[float] = ..., propensity: _Optional[float] = ...) -> None: ...

class RankedShelf(_message.Message):
    __slots__ = ("shelf_id", "score", "propensity", "cards", "position", "explanation_id", "explanation_propensity")
    SHELF_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    CARDS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    shelf_id: str
    score: float
    propensity: float
    cards: _containers.RepeatedCompositeFieldContainer[RankedCard]
    position: int
    explanation_id: str
    explanation_propensity: float
    def __init__(self, shelf_id: _Optional[str] = ..., score: _Optional[float] = ..., propensity: _Optional[float] = ..., cards: _Optional[_Iterable[_Union[RankedCard, _Mapping]]] = ..., position: _Optional[int] = ..., explanation_id: _Optional[str] = ..., explanation_propensity: _Optional[float] = ...) -> None: ...

class RankHomeResponse(_message.Message):
    __slots__ = ("decision_id", "shelves", "policy", "model_version")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    SHELVES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    shelves: _containers.RepeatedCompositeFieldContainer[RankedShelf]
    policy: str
    model_version: str
    def __init__(self, decision_id: _Optional[str] = ..., shelves: _Optional[_Iterable[_Union[RankedShelf, _Mapping]]] = ..., policy: _Optional[str] = ..., model_version: _Optional[str] = ...) -> None: ...

class SuggestStickersRequest(_message.Message):
    __slots__ = ("user_id", "message", "language", "k", "context", "previous_message", "partial")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    message: str
    language: str
    k: int
    context: _containers.ScalarMap[str, str]
    previous_message: str
    partial: bool
    def __init__(self, user_id: _Optional[str] = ..., message: _Optional[str] = ..., language: _Optional[str] = ..., k: _Optional[int] = ..., context: _Optional[_Mapping[str, str]] = ..., previous_message: _Optional[str] = ..., partial: bool = ...) -> None: ...

class StickerSuggestion(_message.Message):
    __slots__ = ("sticker_id", "score", "propensity")
    STICKER_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    sticker_id: str
    score: float
    propensity: float
    def __init__(self, sticker_id: _Optional[str] = ..., score: _Optional[float] = ..., propensity: _Optional[float] = ...) -> None: ...

class SuggestStickersResponse(_message.Message):
    __slots__ = ("decision_id", "suggestions", "policy", "model_version")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    suggestions: _containers.RepeatedCompositeFieldContainer[StickerSuggestion]
    policy: str
    model_version: str
    def __init__(self, decision_id: _Optional[str] = ..., suggestions: _Optional[_Iterable[_Union[StickerSuggestion, _Mapping]]] = ..., policy: _Optional[str] = ..., model_version: _Optional[str] = ...) -> None: ...

class GetDeviceBundleRequest(_message.Message):
    __slots__ = ("if_none_match",)
    IF_NONE_MATCH_FIELD_NUMBER: _ClassVar[int]
    if_none_match: str
    def __init__(self, if_none_match: _Optional[str] = ...) -> None: ...

class DeviceBundleChunk(_message.Message):
    __slots__ = ("version", "sha256", "total_bytes", "offset", "data")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    version: str
    sha256: str
    total_bytes: int
    offset: int
    data: bytes
    def __init__(self, version: _Optional[str] = ..., sha256: _Optional[str] = ..., total_bytes: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class DeviceSend(_message.Message):
    __slots__ = ("sticker_id", "sent_at_ms")
    STICKER_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    sticker_id: str
    sent_at_ms: int
    def __init__(self, sticker_id: _Optional[str] = ..., sent_at_ms: _Optional[int] = ...) -> None: ...

class DeviceDecision(_message.Message):
    __slots__ = ("device_decision_id", "served_at_ms", "model_version", "policy", "epsilon", "message", "partial", "language", "candidate_ids", "candidate_scores", "ranking_propensity", "suggestions", "sends")
    DEVICE_DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    SERVED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_IDS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_SCORES_FIELD_NUMBER: _ClassVar[int]
    RANKING_PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    SENDS_FIELD_NUMBER: _ClassVar[int]
    device_decision_id: str
    served_at_ms: int
    model_version: str
    policy: str
    epsilon: float
    message: str
    partial: bool
    language: str
    candidate_ids: _containers.RepeatedScalarFieldContainer[str]
    candidate_scores: _containers.RepeatedScalarFieldContainer[float]
    ranking_propensity: float
    suggestions: _containers.RepeatedCompositeFieldContainer[StickerSuggestion]
    sends: _containers.RepeatedCompositeFieldContainer[DeviceSend]
    def __init__(self, device_decision_id: _Optional[str] = ..., served_at_ms: _Optional[int] = ..., model_version: _Optional[str] = ..., policy: _Optional[str] = ..., epsilon: _Optional[float] = ..., message: _Optional[str] = ..., partial: bool = ..., language: _Optional[str] = ..., candidate_ids: _Optional[_Iterable[str]] = ..., candidate_scores: _Optional[_Iterable[float]] = ..., ranking_propensity: _Optional[float] = ..., suggestions: _Optional[_Iterable[_Union[StickerSuggestion, _Mapping]]] = ..., sends: _Optional[_Iterable[_Union[DeviceSend, _Mapping]]] = ...) -> None: ...

class ReportDeviceDecisionsRequest(_message.Message):
    __slots__ = ("user_id", "decisions")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    decisions: _containers.RepeatedCompositeFieldContainer[DeviceDecision]
    def __init__(self, user_id: _Optional[str] = ..., decisions: _Optional[_Iterable[_Union[DeviceDecision, _Mapping]]] = ...) -> None: ...

class RejectedDeviceDecision(_message.Message):
    __slots__ = ("index", "device_decision_id", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DEVICE_DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    device_decision_id: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., device_decision_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReportDeviceDecisionsResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "rejected")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedDeviceDecision]
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedDeviceDecision, _Mapping]]] = ...) -> None: ...

class ReportOutcomeRequest(_message.Message):
    __slots__ = ("decision_id", "item_id", "reward", "event_type", "idempotency_key")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    item_id: str
    reward: float
    event_type: str
    idempotency_key: str
    def __init__(self, decision_id: _Optional[str] = ..., item_id: _Optional[str] = ..., reward: _Optional[float] = ..., event_type: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ReportOutcomeResponse(_message.Message):
    __slots__ = ("outcome_id",)
    OUTCOME_ID_FIELD_NUMBER: _ClassVar[int]
    outcome_id: str
    def __init__(self, outcome_id: _Optional[str] = ...) -> None: ...

class ActivateRequest(_message.Message):
    __slots__ = ("decision_id",)
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    def __init__(self, decision_id: _Optional[str] = ...) -> None: ...

class ActivateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
