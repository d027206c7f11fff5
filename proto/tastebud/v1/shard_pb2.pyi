from tastebud.v1 import recommender_pb2 as _recommender_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShardSearchRequest(_message.Message):
    __slots__ = ("index_version", "queries", "dimension", "k", "filter", "exclude", "restrict_to", "has_restrict_to", "with_vectors", "space")
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    RESTRICT_TO_FIELD_NUMBER: _ClassVar[int]
    HAS_RESTRICT_TO_FIELD_NUMBER: _ClassVar[int]
    WITH_VECTORS_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    index_version: str
    queries: bytes
    dimension: int
    k: int
    filter: _recommender_pb2.Filter
    exclude: bytes
    restrict_to: bytes
    has_restrict_to: bool
    with_vectors: bool
    space: str
    def __init__(self, index_version: _Optional[str] = ..., queries: _Optional[bytes] = ..., dimension: _Optional[int] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[_recommender_pb2.Filter, _Mapping]] = ..., exclude: _Optional[bytes] = ..., restrict_to: _Optional[bytes] = ..., has_restrict_to: _Optional[bool] = ..., with_vectors: _Optional[bool] = ..., space: _Optional[str] = ...) -> None: ...

class ShardSearchResponse(_message.Message):
    __slots__ = ("index_version", "shard", "queries", "k", "scores", "ids", "vectors", "width")
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    index_version: str
    shard: int
    queries: int
    k: int
    scores: bytes
    ids: bytes
    vectors: bytes
    width: int
    def __init__(self, index_version: _Optional[str] = ..., shard: _Optional[int] = ..., queries: _Optional[int] = ..., k: _Optional[int] = ..., scores: _Optional[bytes] = ..., ids: _Optional[bytes] = ..., vectors: _Optional[bytes] = ..., width: _Optional[int] = ...) -> None: ...

class ShardVectorsRequest(_message.Message):
    __slots__ = ("index_version", "ids", "kind")
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    index_version: str
    ids: bytes
    kind: str
    def __init__(self, index_version: _Optional[str] = ..., ids: _Optional[bytes] = ..., kind: _Optional[str] = ...) -> None: ...

class ShardVectorsResponse(_message.Message):
    __slots__ = ("index_version", "vectors", "width")
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    index_version: str
    vectors: bytes
    width: int
    def __init__(self, index_version: _Optional[str] = ..., vectors: _Optional[bytes] = ..., width: _Optional[int] = ...) -> None: ...

class ShardInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShardVersion(_message.Message):
    __slots__ = ("version", "items", "index_type")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    INDEX_TYPE_FIELD_NUMBER: _ClassVar[int]
    version: str
    items: int
    index_type: str
    def __init__(self, version: _Optional[str] = ..., items: _Optional[int] = ..., index_type: _Optional[str] = ...) -> None: ...

class ShardInfoResponse(_message.Message):
    __slots__ = ("shard", "shards", "versions", "refused_version", "refused_reason", "replica")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFUSED_REASON_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    shard: int
    shards: int
    versions: _containers.RepeatedCompositeFieldContainer[ShardVersion]
    refused_version: str
    refused_reason: str
    replica: str
    def __init__(self, shard: _Optional[int] = ..., shards: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[ShardVersion, _Mapping]]] = ..., refused_version: _Optional[str] = ..., refused_reason: _Optional[str] = ..., replica: _Optional[str] = ...) -> None: ...
