"""A shard process (``tastebud serve-shard``): one shard of the index behind ``tastebud.v1.Shard``.

It loads only its own shard (about 1/N of the vectors), verified against the manifest, and
reports NOT_SERVING on health until it has. It watches the index root's ``current`` pointer
and loads a newly published version *beside* the one it serves; both stay searchable, since
the router pins every request to one version, until the older one has gone unasked for
``linger_seconds``. A new version that does not verify is refused: the replica keeps serving
what it has and says why in ``Info`` and in its log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tastebud.cluster import wire
from tastebud.cluster.config import SHARD_SERVICE
from tastebud.cluster.refusal import Refusal
from tastebud.errors import IndexIntegrityError, InvalidInputError, TastebudError, UnavailableError
from tastebud.index.load import open_shard
from tastebud.index.manifest import read_manifest
from tastebud.index.publish import resolve_version_dir
from tastebud.index.shards import LocalShard
from tastebud.server.app import bind_port, shutdown_on_failure, until_stopped
from tastebud.server.errors import grpc_errors
from tastebud.v1 import shard_pb2 as spb
from tastebud.v1 import shard_pb2_grpc as spb_grpc

log = logging.getLogger(__name__)

MAX_HELD_VERSIONS = 2
MAX_CONNECTION_AGE_MS = 5 * 60 * 1000


@dataclass
class _Held:
    shard: LocalShard
    shards: int
    last_used: float = field(default_factory=time.monotonic)
    used: bool = False  # asked for at least once: the router has switched to it


class ShardHost:
    """The versions of one shard that this process holds, newest last. Thread-safe: versions are
    loaded on a worker thread while the event loop searches the ones already held."""

    def __init__(self, index: Path, shard: int, executor: Executor | None = None,
                 tuning_overrides: dict[str, float] | None = None, batching: bool = True,
                 linger_seconds: float = 30.0) -> None:
        self._index = Path(index)
        self._shard = shard
        self._executor = executor
        self._tuning = tuning_overrides
        self._batching = batching
        self._linger = linger_seconds
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self.refused = Refusal()
        self.replica = f"{socket.gethostname()}:{os.getpid()}"  # the server adds its port once bound

    @property
    def shard(self) -> int:
        return self._shard

    @property
    def versions(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def load_published(self) -> bool:
        """Load the version ``current`` points at, if it is new. Blocking (hashes the shard's
        files). True when a version was added; a version that fails is remembered as refused."""
        try:
            version_dir = resolve_version_dir(self._index)
        except TastebudError as exc:
            self.refused.record("", str(exc), log, f"shard {self._shard}")
            return False
        version = version_dir.name
        with self._lock:
            if version in self._held or self.refused.holds_off(version):
                return False
        try:
            manifest = read_manifest(version_dir)
            shard = open_shard(version_dir, manifest, self._shard, None, self._tuning, self._executor,
                               self._batching)
        except (TastebudError, OSError, RuntimeError) as exc:
            # RuntimeError: FAISS's own complaint about an unreadable index file.
            self.refused.record(version, str(exc), log, f"shard {self._shard}")
            return False
        with self._lock:
            self._held[version] = _Held(shard, len(manifest.shards))
            while len(self._held) > MAX_HELD_VERSIONS:
                # The least recently asked-for older version goes: never the one the router serves
                # from (say it stayed on an old version because another shard refused a newer one).
                dropped = min((v for v in self._held if v != version), key=lambda v: self._held[v].last_used)
                del self._held[dropped]
                log.info("shard %d: dropped version %s (holding %d at most)", self._shard, dropped, MAX_HELD_VERSIONS)
            if self.refused.version and self.refused.version != version:
                self.refused.clear()
        log.info("shard %d: loaded version %s (%d items, %s)", self._shard, version, shard.info().count,
                 shard.info().factory)
        return True

    def get(self, version: str) -> LocalShard:
        """The shard of ``version`` ('' = newest held); UNAVAILABLE when this replica lacks it,
        so the router's retry policy asks another replica."""
        with self._lock:
            if not self._held:
                raise UnavailableError(f"shard {self._shard} has no index version loaded yet")
            if not version:
                version = next(reversed(self._held))
            held = self._held.get(version)
            if held is None:
                raise UnavailableError(f"shard {self._shard}: version {version} is not loaded on this replica "
                                       f"(it holds {', '.join(self._held)})")
            held.last_used = time.monotonic()
            held.used = True
            return held.shard

    def drop_unused(self, now: float | None = None) -> list[str]:
        """Drop versions older than the newest once the newest is in use (the router switched)
        and nobody asked for them in ``linger_seconds``. While the newest is unasked for, the
        router may still be on an older one: quiet traffic or a refusal elsewhere drops nothing."""
        now = time.monotonic() if now is None else now
        with self._lock:
            newest = next(reversed(self._held), None)
            if newest is None or not self._held[newest].used:
                return []
            stale = [v for v, h in self._held.items() if v != newest and now - h.last_used > self._linger]
            for version in stale:
                del self._held[version]
        for version in stale:
            log.info("shard %d: dropped version %s (unused for %.0f s)", self._shard, version, self._linger)
        return stale

    def info(self) -> spb.ShardInfoResponse:
        with self._lock:
            held = list(self._held.items())
        shards = held[-1][1].shards if held else 0
        return spb.ShardInfoResponse(
            shard=self._shard, shards=shards,
            versions=[spb.ShardVersion(version=v, items=h.shard.info().count, index_type=h.shard.info().factory)
                      for v, h in reversed(held)],
            refused_version=self.refused.version, refused_reason=self.refused.reason, replica=self.replica)


class ShardService(spb_grpc.ShardServicer):
    def __init__(self, host: ShardHost) -> None:
        self._host = host

    @grpc_errors
    async def Search(self, request: spb.ShardSearchRequest, context: grpc.aio.ServicerContext
                     ) -> spb.ShardSearchResponse:
        queries, query = wire.search_query(request)
        shard = self._host.get(request.index_version)
        dimension = shard.query_width(query.space)
        if queries.shape[1] != dimension:
            raise InvalidInputError(f"dimension: the {query.space} space is {dimension}-d, got {queries.shape[1]}")
        hits = await shard.search(queries, query)
        return wire.search_response(hits, self._host.shard, shard.info().version)

    @grpc_errors
    async def Vectors(self, request: spb.ShardVectorsRequest, context: grpc.aio.ServicerContext
                      ) -> spb.ShardVectorsResponse:
        if request.kind not in ("item", "text", "query"):
            raise InvalidInputError(f"kind: must be item, text or query, got {request.kind!r}")
        shard = self._host.get(request.index_version)
        ids = wire.read_array(request.ids, wire.I64, (-1,), "ids")
        try:
            vectors = await shard.vectors(ids, request.kind)
        except KeyError as exc:
            raise InvalidInputError(f"ids: {exc.args[0]}") from None
        return spb.ShardVectorsResponse(index_version=shard.info().version,
                                        vectors=wire.array_bytes(vectors, wire.F32), width=int(vectors.shape[1]))

    @grpc_errors
    async def Info(self, request: spb.ShardInfoRequest, context: grpc.aio.ServicerContext) -> spb.ShardInfoResponse:
        return self._host.info()


@dataclass
class RunningShard:
    server: grpc.aio.Server
    port: int
    host: ShardHost
    health: health.aio.HealthServicer
    executor: ThreadPoolExecutor
    watcher: asyncio.Task | None = None

    async def stop(self, grace: float | None = None) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.executor.shutdown(wait=False, cancel_futures=True)


async def _watch(host: ShardHost, executor: Executor, every: float) -> None:
    """Pick up newly published versions, and drop the ones nobody asks for any more."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every)
        try:
            await loop.run_in_executor(executor, host.load_published)
            host.drop_unused()
        except Exception:  # noqa: BLE001 - a watcher that dies would freeze the version for good
            log.exception("shard %d: watching the index failed", host.shard)


async def start_shard_server(index: Path, shard: int, host: str = "127.0.0.1", port: int = 0, *,
                             watch_seconds: float = 2.0, linger_seconds: float = 30.0, workers: int = 2,
                             tuning_overrides: dict[str, float] | None = None, batching: bool = True,
                             faiss_threads: int = 1) -> RunningShard:
    """Bind, serve NOT_SERVING while the shard loads and verifies, then SERVING; watch for new versions."""
    import faiss

    faiss.omp_set_num_threads(faiss_threads)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"shard{shard}")
    shard_host = ShardHost(index, shard, executor, tuning_overrides, batching, linger_seconds)
    # Connections are recycled now and then, so a router resolving a DNS target (Kubernetes'
    # headless Service) finds replicas added by a scale-up; gRPC re-resolves on reconnect.
    server = grpc.aio.server(options=[("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
                                      ("grpc.max_connection_age_grace_ms", 10_000)])
    health_servicer = health.aio.HealthServicer()
    spb_grpc.add_ShardServicer_to_server(ShardService(shard_host), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SHARD_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    for name in ("", SHARD_SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    with shutdown_on_failure(executor):
        bound = bind_port(server, host, port)
    await server.start()
    shard_host.replica += f":{bound}"
    running = RunningShard(server, bound, shard_host, health_servicer, executor)
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(executor, shard_host.load_published):
        await running.stop(0)
        raise shard_error(shard_host)
    running.watcher = asyncio.create_task(_watch(shard_host, executor, watch_seconds))
    for name in ("", SHARD_SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("shard %d serving version %s on %s:%d", shard, shard_host.versions[-1], host, bound)
    return running


def shard_error(host: ShardHost) -> TastebudError:
    return IndexIntegrityError(f"shard {host.shard}: cannot serve version {host.refused.version or '(none)'}: "
                               f"{host.refused.reason}")


async def serve_shard(index: Path, shard: int, host: str, port: int, grace_seconds: float = 5.0, **options) -> None:
    """Run one shard replica until SIGTERM or SIGINT, then stop gracefully."""
    running = await start_shard_server(index, shard, host, port, **options)
    await until_stopped(f"shard {shard} serving on {host}:{running.port}", running.stop, grace_seconds)
