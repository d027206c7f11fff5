"""How shard searches cross the wire: numpy arrays <-> raw bytes, ``ShardQuery`` <-> protobuf.

Pure functions used by both ends (router and shard process), so the two can never disagree on
a layout. Arrays are little-endian and row-major; a length that does not fit the declared
shape is an ``InvalidInputError`` naming the field.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError
from tastebud.index.filters import ItemFilter
from tastebud.index.shards import ShardHits, ShardQuery
from tastebud.server.convert import filter_from_proto
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import shard_pb2 as spb

F32 = np.dtype("<f4")
I64 = np.dtype("<i8")
SPACES = ("item", "text")


def array_bytes(array: npt.ArrayLike, dtype: np.dtype) -> bytes:
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def read_array(data: bytes, dtype: np.dtype, shape: tuple[int, ...], field: str) -> npt.NDArray:
    """``data`` as an array of ``shape`` (-1 allowed once); a size mismatch names the field."""
    if len(data) % dtype.itemsize:
        raise InvalidInputError(f"{field}: {len(data)} bytes is not a whole number of {dtype.itemsize}-byte values")
    flat = np.frombuffer(data, dtype=dtype)
    try:
        return flat.reshape(shape)
    except ValueError:
        raise InvalidInputError(f"{field}: {len(flat)} values do not fit the shape {shape}") from None


def filter_to_proto(item_filter: ItemFilter | None) -> pb.Filter | None:
    if item_filter is None or item_filter.is_empty():
        return None
    return pb.Filter(
        include=[pb.AttributeValues(attribute=a, values=sorted(v)) for a, v in item_filter.include],
        exclude=[pb.AttributeValues(attribute=a, values=sorted(v)) for a, v in item_filter.exclude],
        year_min=item_filter.year_min, year_max=item_filter.year_max)


def search_request(queries: npt.NDArray[np.float32], query: ShardQuery, version: str) -> spb.ShardSearchRequest:
    request = spb.ShardSearchRequest(
        index_version=version, queries=array_bytes(queries, F32), dimension=int(queries.shape[1]), k=query.k,
        filter=filter_to_proto(query.item_filter), exclude=array_bytes(query.exclude, I64),
        restrict_to=b"" if query.restrict_to is None else array_bytes(query.restrict_to, I64),
        has_restrict_to=query.restrict_to is not None, with_vectors=query.with_vectors, space=query.space)
    return request


def search_query(request: spb.ShardSearchRequest) -> tuple[npt.NDArray[np.float32], ShardQuery]:
    """The shard side: validate a request and turn it back into queries + ``ShardQuery``."""
    if request.space not in SPACES:
        raise InvalidInputError(f"space: must be one of {SPACES}, got {request.space!r}")
    if not 1 <= request.k <= 100_000:
        raise InvalidInputError(f"k: must be within 1..100000, got {request.k}")
    if request.dimension < 1:
        raise InvalidInputError(f"dimension: must be >= 1, got {request.dimension}")
    queries = read_array(request.queries, F32, (-1, request.dimension), "queries")
    if len(queries) == 0:
        raise InvalidInputError("queries: at least one query vector is needed")
    if not np.isfinite(queries).all():
        raise InvalidInputError("queries: every value must be finite")
    restrict = read_array(request.restrict_to, I64, (-1,), "restrict_to") if request.has_restrict_to else None
    query = ShardQuery(k=request.k, item_filter=filter_from_proto(request.filter, request.HasField("filter")),
                       exclude=read_array(request.exclude, I64, (-1,), "exclude"), restrict_to=restrict,
                       with_vectors=request.with_vectors, space=request.space)
    return queries, query


def search_response(hits: ShardHits, shard: int, version: str) -> spb.ShardSearchResponse:
    q, k = hits.ids.shape
    width = 0 if hits.vectors is None else int(hits.vectors.shape[2])
    return spb.ShardSearchResponse(
        index_version=version, shard=shard, queries=q, k=k, scores=array_bytes(hits.scores, F32),
        ids=array_bytes(hits.ids, I64), vectors=b"" if hits.vectors is None else array_bytes(hits.vectors, F32),
        width=width)


def search_hits(response: spb.ShardSearchResponse, with_vectors: bool) -> ShardHits:
    """The router side: a shard's answer as ``ShardHits``."""
    shape = (response.queries, response.k)
    vectors = read_array(response.vectors, F32, (*shape, response.width), "vectors") if with_vectors else None
    return ShardHits(read_array(response.scores, F32, shape, "scores"), read_array(response.ids, I64, shape, "ids"),
                     vectors)
