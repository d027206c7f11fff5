from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AttributeValues(_message.Message):
    __slots__ = ("attribute", "values")
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    attribute: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, attribute: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("include", "exclude", "year_min", "year_max")
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    YEAR_MIN_FIELD_NUMBER: _ClassVar[int]
    YEAR_MAX_FIELD_NUMBER: _ClassVar[int]
    include: _containers.RepeatedCompositeFieldContainer[AttributeValues]
    exclude: _containers.RepeatedCompositeFieldContainer[AttributeValues]
    year_min: int
    year_max: int
    def __init__(self, include: _Optional[_Iterable[_Union[AttributeValues, _Mapping]]] = ..., exclude: _Optional[_Iterable[_Union[AttributeValues, _Mapping]]] = ..., year_min: _Optional[int] = ..., year_max: _Optional[int] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("user_id", "history", "k", "filter", "include_seen", "restrict_to", "diversity", "taste", "exclude_items", "exclude_shown_within_seconds")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SEEN_FIELD_NUMBER: _ClassVar[int]
    RESTRICT_TO_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    TASTE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SHOWN_WITHIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    history: _containers.RepeatedScalarFieldContainer[str]
    k: int
    filter: Filter
    include_seen: bool
    restrict_to: _containers.RepeatedScalarFieldContainer[str]
    diversity: float
    taste: str
    exclude_items: _containers.RepeatedScalarFieldContainer[str]
    exclude_shown_within_seconds: float
    def __init__(self, user_id: _Optional[str] = ..., history: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., include_seen: _Optional[bool] = ..., restrict_to: _Optional[_Iterable[str]] = ..., diversity: _Optional[float] = ..., taste: _Optional[str] = ..., exclude_items: _Optional[_Iterable[str]] = ..., exclude_shown_within_seconds: _Optional[float] = ...) -> None: ...

class SimilarItemsRequest(_message.Message):
    __slots__ = ("item_id", "k", "filter")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    k: int
    filter: Filter
    def __init__(self, item_id: _Optional[str] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class SearchItemsRequest(_message.Message):
    __slots__ = ("text", "k", "filter")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    text: str
    k: int
    filter: Filter
    def __init__(self, text: _Optional[str] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class RecommendedItem(_message.Message):
    __slots__ = ("item_id", "score", "title", "reason", "because_item_id", "year", "attributes")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BECAUSE_ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    title: str
    reason: str
    because_item_id: str
    year: int
    attributes: _containers.RepeatedCompositeFieldContainer[AttributeValues]
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., title: _Optional[str] = ..., reason: _Optional[str] = ..., because_item_id: _Optional[str] = ..., year: _Optional[int] = ..., attributes: _Optional[_Iterable[_Union[AttributeValues, _Mapping]]] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("items", "index_version", "degraded", "missing_shards", "notes")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    MISSING_SHARDS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    index_version: str
    degraded: bool
    missing_shards: _containers.RepeatedScalarFieldContainer[int]
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., index_version: _Optional[str] = ..., degraded: _Optional[bool] = ..., missing_shards: _Optional[_Iterable[int]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class Interaction(_message.Message):
    __slots__ = ("user_id", "item_id", "timestamp", "event", "weight")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    item_id: str
    timestamp: float
    event: str
    weight: float
    def __init__(self, user_id: _Optional[str] = ..., item_id: _Optional[str] = ..., timestamp: _Optional[float] = ..., event: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class RecordInteractionsRequest(_message.Message):
    __slots__ = ("interactions",)
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    interactions: _containers.RepeatedCompositeFieldContainer[Interaction]
    def __init__(self, interactions: _Optional[_Iterable[_Union[Interaction, _Mapping]]] = ...) -> None: ...

class RecordInteractionsResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    def __init__(self, recorded: _Optional[int] = ...) -> None: ...

class GetIndexInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IndexInfo(_message.Message):
    __slots__ = ("version", "items", "users", "shards", "model", "dimension", "created_at", "index_type", "filter_attributes", "refused_version", "refused_reason", "newest_year")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    INDEX_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFUSED_REASON_FIELD_NUMBER: _ClassVar[int]
    NEWEST_YEAR_FIELD_NUMBER: _ClassVar[int]
    version: str
    items: int
    users: int
    shards: int
    model: str
    dimension: int
    created_at: str
    index_type: str
    filter_attributes: _containers.RepeatedScalarFieldContainer[str]
    refused_version: str
    refused_reason: str
    newest_year: int
    def __init__(self, version: _Optional[str] = ..., items: _Optional[int] = ..., users: _Optional[int] = ..., shards: _Optional[int] = ..., model: _Optional[str] = ..., dimension: _Optional[int] = ..., created_at: _Optional[str] = ..., index_type: _Optional[str] = ..., filter_attributes: _Optional[_Iterable[str]] = ..., refused_version: _Optional[str] = ..., refused_reason: _Optional[str] = ..., newest_year: _Optional[int] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user_id", "history_limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    history_limit: int
    def __init__(self, user_id: _Optional[str] = ..., history_limit: _Optional[int] = ...) -> None: ...

class HistoryItem(_message.Message):
    __slots__ = ("item_id", "title", "timestamp")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    title: str
    timestamp: float
    def __init__(self, item_id: _Optional[str] = ..., title: _Optional[str] = ..., timestamp: _Optional[float] = ...) -> None: ...

class UserProfile(_message.Message):
    __slots__ = ("user_id", "known", "subscribed", "history_length", "history")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    known: bool
    subscribed: bool
    history_length: int
    history: _containers.RepeatedCompositeFieldContainer[HistoryItem]
    def __init__(self, user_id: _Optional[str] = ..., known: _Optional[bool] = ..., subscribed: _Optional[bool] = ..., history_length: _Optional[int] = ..., history: _Optional[_Iterable[_Union[HistoryItem, _Mapping]]] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("user_ids", "next_page_token")
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetSubscriptionRequest(_message.Message):
    __slots__ = ("user_id", "subscribed")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    subscribed: bool
    def __init__(self, user_id: _Optional[str] = ..., subscribed: _Optional[bool] = ...) -> None: ...

class SetSubscriptionResponse(_message.Message):
    __slots__ = ("subscribed",)
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    subscribed: bool
    def __init__(self, subscribed: _Optional[bool] = ...) -> None: ...
