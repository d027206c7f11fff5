"""The router (``tastebud serve --cluster``): the public ``tastebud.v1.Recommender`` API over
shard processes.

It holds what is small per item (ids, titles, attributes, histories, the user tower, the
ranker) and none of the vectors: every Recommend fans out to one replica of each shard
(``RemoteShard``), merges and re-ranks with the same core as the single process.

Index swaps, whole or not at all: the router watches the published ``current`` pointer (and
``Admin.Reload`` asks it to look now). For a new version it opens its own part, then waits until
every shard's replicas report that version loaded, and only then swaps the core in one
assignment; requests already running finish on the version they started with, and every shard
call carries its version, so an answer never mixes two. A version the shards refuse (it does
not verify) is not adopted: the router stays where it is and says why in ``GetIndexInfo``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc

from tastebud.cluster.config import ClusterConfig
from tastebud.cluster.refusal import Refusal
from tastebud.cluster.remote_shard import RemoteShard, shard_channel
from tastebud.embed.encoder import Encoder, SentenceTransformerEncoder
from tastebud.errors import TastebudError
from tastebud.index.load import open_index
from tastebud.index.publish import resolve_version_dir
from tastebud.index.shards import ShardInfo
from tastebud.ingest.interaction_store import InteractionStore
from tastebud.server import convert
from tastebud.server.app import RunningServer, assemble_recommender, bind_server, set_serving, shutdown_on_failure, \
    until_stopped
from tastebud.server.admin import RELOAD_TIMEOUT_SECONDS, SwitchResult
from tastebud.server.config import ServerConfig
from tastebud.server.errors import grpc_errors
from tastebud.server.recommender import Recommender
from tastebud.server.service import RecommenderService
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import shard_pb2 as spb
from tastebud.v1 import shard_pb2_grpc as spb_grpc

log = logging.getLogger(__name__)

INFO_TIMEOUT_SECONDS = 2.0
MAX_INFO_PROBES = 32


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether every shard holds a version: their entries for it, or why not (``refused``: a
    replica will not load it, so waiting cannot help)."""

    entries: dict[int, spb.ShardVersion] | None
    why: str = ""
    refused: bool = False


class Router:
    """Versions of the core over remote shards, and the rule for moving from one to the next."""

    def __init__(self, cluster: ClusterConfig, encoder: Encoder, executor: ThreadPoolExecutor,
                 store: InteractionStore | None, service: RecommenderService) -> None:
        self._cluster = cluster
        self._encoder = encoder
        self._executor = executor
        self._store = store
        self._service = service
        self._channels = {s.shard: shard_channel(s.target, cluster) for s in cluster.shards}
        self._replicas = {s.shard: len(s.addresses) for s in cluster.shards}  # 0: unknown (a DNS name)
        self._switch_lock = asyncio.Lock()
        self.refused = Refusal()

    @property
    def current(self) -> Recommender | None:
        return self._service.recommender

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self._channels.values()))

    async def _replica_infos(self, shard: int) -> list[spb.ShardInfoResponse]:
        """Info from every replica of the shard that round_robin reaches: asked until each listed
        replica has answered (by its replica id), or, for a DNS target whose size is unknown, until
        two rounds in a row bring no new replica."""
        stub = spb_grpc.ShardStub(self._channels[shard])
        expected = self._replicas[shard]
        seen: dict[str, spb.ShardInfoResponse] = {}
        quiet = 0
        for _ in range(MAX_INFO_PROBES):
            answer = await stub.Info(spb.ShardInfoRequest(), timeout=INFO_TIMEOUT_SECONDS)
            quiet = 0 if answer.replica not in seen else quiet + 1
            seen[answer.replica] = answer
            if (expected and len(seen) >= expected) or (not expected and quiet >= 2):
                break
        return list(seen.values())

    async def shards_ready(self, version: str) -> Readiness:
        """Each shard's entry for ``version`` when every replica asked holds it, else why not;
        a replica that refused the version makes that the reason (and waiting pointless)."""
        entries: dict[int, spb.ShardVersion] = {}
        for shard in sorted(self._channels):
            try:
                answers = await self._replica_infos(shard)
            except grpc.aio.AioRpcError as exc:
                return Readiness(None, f"shard {shard} is not answering: {exc.code().name}")
            for answer in answers:
                if answer.shard != shard:
                    return Readiness(None, f"the target of shard {shard} answers as shard {answer.shard}: "
                                           "check the cluster config")
                if answer.refused_version == version:
                    return Readiness(None, f"refused by shard {shard}: {answer.refused_reason}", refused=True)
                held = {v.version: v for v in answer.versions}
                if version not in held:
                    return Readiness(None, f"shard {shard} has not loaded {version} yet "
                                           f"(it holds {', '.join(held) or 'none'})")
                entries[shard] = held[version]
        return Readiness(entries)

    def _open(self, version_dir: Path, entries: dict[int, spb.ShardVersion]) -> Recommender:
        """The router's part of a version (no vectors) over that version's remote shards. Blocking."""
        index = open_index(version_dir, fingerprint=self._encoder.fingerprint, dimension=self._encoder.dimension,
                           with_shards=False)
        manifest = index.manifest
        if {e.shard for e in manifest.shards} != set(self._channels):
            raise TastebudError(f"{version_dir}: the index has {len(manifest.shards)} shards, the cluster config "
                                f"lists {len(self._channels)}")
        for entry in manifest.shards:
            if entries[entry.shard].items != entry.count:
                raise TastebudError(f"shard {entry.shard} serves {entries[entry.shard].items} items of {manifest.version}, "
                                    f"the manifest says {entry.count}")
        timeout = self._cluster.router.shard_timeout_ms / 1000.0
        cache = self._cluster.router.vector_cache_items // max(1, len(manifest.shards))
        shards = tuple(RemoteShard(self._channels[e.shard], e.shard,
                                   ShardInfo(e.shard, e.count, manifest.factory, manifest.version), timeout, cache,
                                   index.items.shard)
                       for e in manifest.shards)
        return assemble_recommender(index, self._encoder, self._executor, self._store, shards=shards)

    async def switch_to_published(self, wait_seconds: float = 0.0) -> SwitchResult:
        """Adopt the published version when every shard has it (waiting up to ``wait_seconds``)."""
        async with self._switch_lock:
            previous = self.current.version if self.current is not None else ""
            try:
                version_dir = resolve_version_dir(self._cluster.index)
            except TastebudError as exc:
                return SwitchResult(previous, previous, False, str(exc))
            version = version_dir.name
            if version == previous:
                return SwitchResult(previous, version, False, "already serving the published version")
            give_up = time.monotonic() + wait_seconds
            while True:
                ready = await self.shards_ready(version)
                if ready.entries is not None or ready.refused or time.monotonic() >= give_up:
                    break
                await asyncio.sleep(0.2)
            entries = ready.entries
            if entries is None:
                if ready.refused:
                    self.refused.record(version, ready.why, log, "router")
                return SwitchResult(previous, previous, False, ready.why)
            loop = asyncio.get_running_loop()
            try:
                recommender = await loop.run_in_executor(self._executor, self._open, version_dir, entries)
            except (TastebudError, OSError) as exc:
                self.refused.record(version, str(exc), log, "router")
                return SwitchResult(previous, previous, False, str(exc))
            self._service.recommender = recommender  # one assignment: the swap
            self.refused.clear()
            log.info("router: switched from %s to %s", previous or "(none)", version)
            return SwitchResult(previous, version, True)

    async def watch(self) -> None:
        """Follow the published pointer every ``watch_seconds``; never dies of one failure."""
        while True:
            await asyncio.sleep(self._cluster.watch_seconds)
            try:
                published = resolve_version_dir(self._cluster.index).name
                if self.current is not None and published != self.current.version and \
                        not self.refused.holds_off(published):
                    await self.switch_to_published()
            except Exception:  # noqa: BLE001 - the watcher must outlive a bad version or a hiccup
                log.exception("router: watching the index failed")


class RouterService(RecommenderService):
    """``tastebud.v1.Recommender`` as the single process serves it, plus the refused version."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        super().__init__(None, executor)
        self.router: Router | None = None

    @grpc_errors
    async def GetIndexInfo(self, request: pb.GetIndexInfoRequest, context: grpc.aio.ServicerContext) -> pb.IndexInfo:
        info = convert.index_info(self._recommender.info())
        if self.router is not None:
            info.refused_version, info.refused_reason = self.router.refused.version, self.router.refused.reason
        return info


@dataclass
class RunningRouter:
    running: RunningServer
    router: Router
    watcher: asyncio.Task

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self, grace: float | None = None) -> None:
        self.watcher.cancel()
        await self.running.stop(grace)
        await self.router.close()


async def start_router(cluster: ClusterConfig, config: ServerConfig, encoder: Encoder | None = None,
                       start_timeout: float = RELOAD_TIMEOUT_SECONDS) -> RunningRouter:
    """Serve the cluster's published version once every shard has it; NOT_SERVING until then."""
    executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="router")
    service = RouterService(executor)
    with shutdown_on_failure(executor):
        running = await bind_server(config, service, executor)
    try:
        loop = asyncio.get_running_loop()
        if encoder is None:
            encoder = await loop.run_in_executor(executor, lambda: SentenceTransformerEncoder(config.model))
        running.store = InteractionStore(config.store_path)
        router = Router(cluster, encoder, executor, running.store, service)
        service.router = router
        running.admin.reload = router.switch_to_published
        result = await router.switch_to_published(start_timeout)
        if not result.switched:
            await router.close()
            raise TastebudError(f"the cluster cannot serve {cluster.index}: {result.message}")
    except BaseException:
        await running.stop(0)
        raise
    await set_serving(running)
    log.info("router serving index %s on %s:%d over %d shards", result.version, config.host, running.port,
             len(cluster.shards))
    return RunningRouter(running, router, asyncio.create_task(router.watch()))


async def serve_router(cluster: ClusterConfig, config: ServerConfig) -> None:
    """Run the router until SIGTERM or SIGINT, then stop gracefully."""
    running = await start_router(cluster, config)
    await until_stopped(f"router serving on {config.host}:{running.port}", running.stop, config.grace_seconds)
