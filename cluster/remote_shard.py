"""``RemoteShard``: the ``ShardClient`` of a shard served by other processes, over gRPC.

One gRPC channel per shard is shared by every index version; a ``RemoteShard`` pins one
version, so the router builds one per (shard, version) and an answer never mixes versions.
The channel's target lists the shard's replicas; gRPC's ``round_robin`` policy with health
checking spreads calls over the healthy ones and its retry policy sends an UNAVAILABLE call to
another replica, both from the service config (``ClusterConfig.service_config``), not from
code here.

Item vectors (history items, candidates' text vectors) are cached per version: they are
immutable within a version, and the same popular items come back call after call.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import grpc
import numpy as np
import numpy.typing as npt

from tastebud.cluster import wire
from tastebud.cluster.config import ClusterConfig
from tastebud.errors import UnavailableError
from tastebud.index.shards import ShardHits, ShardInfo, ShardQuery
from tastebud.v1 import shard_pb2 as spb
from tastebud.v1 import shard_pb2_grpc as spb_grpc


def shard_channel(target: str, config: ClusterConfig) -> grpc.aio.Channel:
    """An aio channel to one shard's replicas, balanced, health-checked and retried by gRPC."""
    return grpc.aio.insecure_channel(target, options=[
        ("grpc.service_config", config.service_config()),
        ("grpc.enable_retries", 1),
        # A replica that was killed is noticed by the health stream; reconnect attempts back off
        # from 100 ms, not gRPC's default 1 s, so a restarted replica is used again quickly.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2000),
        ("grpc.max_receive_message_length", 64 << 20),
    ])


class VectorCache:
    """Least recently used vectors by (kind, global id), up to ``capacity`` rows."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._rows: OrderedDict[tuple[str, int], npt.NDArray[np.float32]] = OrderedDict()

    def split(self, kind: str, ids: npt.NDArray[np.int64]) -> tuple[dict[int, npt.NDArray[np.float32]], list[int]]:
        """The cached rows among ``ids``, and the ids still to fetch (each once)."""
        found: dict[int, npt.NDArray[np.float32]] = {}
        wanted: list[int] = []
        for i in ids.tolist():
            row = self._rows.get((kind, i))
            if row is not None:
                self._rows.move_to_end((kind, i))
                found[i] = row
            else:
                wanted.append(i)
        return found, list(dict.fromkeys(wanted))

    def put(self, kind: str, ids: list[int], vectors: npt.NDArray[np.float32]) -> None:
        if self._capacity == 0:
            return
        for i, row in zip(ids, vectors):
            self._rows[(kind, i)] = row.copy()  # its own bytes: a view would keep the whole reply alive
        while len(self._rows) > self._capacity:
            self._rows.popitem(last=False)


class RemoteShard:
    """One shard of one index version, served by replicas behind ``channel``."""

    def __init__(self, channel: grpc.aio.Channel, shard: int, info: ShardInfo, timeout_seconds: float,
                 cache_items: int = 0, shard_of_row: npt.NDArray[np.int32] | None = None) -> None:
        self._stub = spb_grpc.ShardStub(channel)
        self._shard = shard
        self._info = info
        self._timeout = timeout_seconds
        self._cache = VectorCache(cache_items)
        self._shard_of_row = shard_of_row

    @property
    def shard(self) -> int:
        return self._shard

    def info(self) -> ShardInfo:
        return self._info

    def answers_inline(self, space: str | None = None) -> bool:
        return False  # every call is a network round trip

    async def search(self, queries: npt.NDArray[np.float32], query: ShardQuery) -> ShardHits:
        if self._shard_of_row is not None and len(query.exclude):
            # Only this shard's exclusions travel: a long history costs each shard its own share.
            query = dataclasses.replace(query, exclude=query.exclude[self._shard_of_row[query.exclude] == self._shard])
        request = wire.search_request(queries, query, self._info.version)
        try:
            response = await self._stub.Search(request, timeout=self._timeout, wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            raise UnavailableError(f"shard {self._shard}: {exc.code().name}: {exc.details()}") from exc
        if response.shard != self._shard:
            raise UnavailableError(f"the target of shard {self._shard} answered as shard {response.shard}")
        if response.index_version != self._info.version:
            raise UnavailableError(f"shard {self._shard} answered for version {response.index_version}, "
                                   f"not {self._info.version}")
        return wire.search_hits(response, query.with_vectors)

    async def vectors(self, global_ids: npt.NDArray[np.int64], kind: str = "item") -> npt.NDArray[np.float32]:
        ids = np.asarray(global_ids, dtype=np.int64)
        found, wanted = self._cache.split(kind, ids)
        if wanted:
            request = spb.ShardVectorsRequest(index_version=self._info.version, kind=kind,
                                              ids=wire.array_bytes(wanted, wire.I64))
            try:
                response = await self._stub.Vectors(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as exc:
                raise UnavailableError(f"shard {self._shard}: {exc.code().name}: {exc.details()}") from exc
            fetched = wire.read_array(response.vectors, wire.F32, (len(wanted), response.width), "vectors")
            self._cache.put(kind, wanted, fetched)
            found.update(zip(wanted, fetched))
        if len(ids) == 0:
            return np.zeros((0, 0), np.float32)
        return np.stack([found[i] for i in ids.tolist()]).astype(np.float32, copy=False)
