from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ForgetUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ForgetUserReceipt(_message.Message):
    __slots__ = ("user_id", "interactions_removed", "impressions_removed", "subscription_removed", "history_items_removed", "index_versions_rewritten", "notes")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTIONS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_REMOVED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ITEMS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSIONS_REWRITTEN_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    interactions_removed: int
    impressions_removed: int
    subscription_removed: bool
    history_items_removed: int
    index_versions_rewritten: _containers.RepeatedScalarFieldContainer[str]
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., interactions_removed: _Optional[int] = ..., impressions_removed: _Optional[int] = ..., subscription_removed: _Optional[bool] = ..., history_items_removed: _Optional[int] = ..., index_versions_rewritten: _Optional[_Iterable[str]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class ExportUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ExportUserResponse(_message.Message):
    __slots__ = ("user_id", "json")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    json: str
    def __init__(self, user_id: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ("timeout_seconds",)
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    timeout_seconds: float
    def __init__(self, timeout_seconds: _Optional[float] = ...) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("previous_version", "version", "switched", "message")
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SWITCHED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    previous_version: str
    version: str
    switched: bool
    message: str
    def __init__(self, previous_version: _Optional[str] = ..., version: _Optional[str] = ..., switched: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...
