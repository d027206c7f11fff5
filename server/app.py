"""Wiring: build the encoder, index, store and core once, and serve them with grpc.aio.

``start_server`` binds first (port 0 picks a free one: tests use that), serves health as
NOT_SERVING while the index loads and verifies off the event loop, then flips to SERVING.
``serve`` adds the process life cycle: SIGTERM/SIGINT -> NOT_SERVING -> graceful stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Iterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tastebud.embed.encoder import Encoder, SentenceTransformerEncoder
from tastebud.errors import PreconditionError, TastebudError
from tastebud.index.load import LoadedIndex, open_index
from tastebud.index.publish import resolve_version_dir
from tastebud.index.shards import ShardClient
from tastebud.ingest.interaction_store import InteractionStore
from tastebud.server.admin import ADMIN_SERVICE, AdminService, SwitchResult
from tastebud.server.config import ServerConfig
from tastebud.server.live_history import LiveHistories
from tastebud.server.privacy import without_forgotten
from tastebud.server.recommender import Recommender, RecommenderConfig
from tastebud.server.rerank import RuleReranker
from tastebud.server.service import RecommenderService
from tastebud.v1 import admin_pb2_grpc, recommender_pb2, recommender_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = recommender_pb2.DESCRIPTOR.services_by_name["Recommender"].full_name


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service: RecommenderService
    executor: ThreadPoolExecutor
    admin: AdminService
    store: InteractionStore | None = None

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, finish in-flight calls within ``grace`` seconds, release resources."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.store is not None:
            self.store.close()


def open_recommender(index_path: Path, encoder: Encoder, executor: ThreadPoolExecutor,
                     store: InteractionStore | None, config: RecommenderConfig = RecommenderConfig(),
                     tuning_overrides: dict[str, float] | None = None, batching: bool = True) -> Recommender:
    """Load and verify an index and put the core together; replay store events newer than it."""
    index = open_index(index_path, fingerprint=encoder.fingerprint, dimension=encoder.dimension, executor=executor,
                       tuning_overrides=tuning_overrides, batching=batching)
    return assemble_recommender(index, encoder, executor, store, config)


def assemble_recommender(index: LoadedIndex, encoder: Encoder, executor: ThreadPoolExecutor,
                         store: InteractionStore | None, config: RecommenderConfig = RecommenderConfig(),
                         shards: tuple[ShardClient, ...] | None = None) -> Recommender:
    """The core over a loaded index: its own shards, or ``shards`` served elsewhere (the router)."""
    since = int(index.manifest.build.get("store_high_water", 0))
    histories = LiveHistories(without_forgotten(index.histories, store), index.items, store, since_seq=since)
    return Recommender(index, encoder, histories, RuleReranker(), executor, config, shards=shards)


def build_recommender(config: ServerConfig, encoder: Encoder, executor: ThreadPoolExecutor
                      ) -> tuple[Recommender, InteractionStore]:
    """The server's core: FAISS threads as configured, the durable store opened."""
    import faiss

    faiss.omp_set_num_threads(config.faiss_threads)
    store = InteractionStore(config.store_path)
    return open_recommender(config.index, encoder, executor, store, tuning_overrides=config.tuning_overrides(),
                            batching=config.batch_search), store


async def start_server(config: ServerConfig, encoder: Encoder | None = None) -> RunningServer:
    """Start serving ``config.index``; returns once the index is loaded and health is SERVING.

    ``encoder`` may be passed in to share one loaded model (tests do); by default the
    configured model is loaded here.
    """
    executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="tastebud")
    with shutdown_on_failure(executor):
        running = await bind_server(config, RecommenderService(None, executor), executor)
    try:
        loop = asyncio.get_running_loop()
        if encoder is None:
            encoder = await loop.run_in_executor(executor, lambda: SentenceTransformerEncoder(config.model))
        recommender, store = await loop.run_in_executor(executor, build_recommender, config, encoder, executor)
    except BaseException:
        await running.stop(0)
        raise
    running.store = store
    running.service.recommender = recommender
    running.admin.reload = functools.partial(reload_in_process, running, config, encoder)
    await set_serving(running)
    log.info("serving index %s on %s:%d", recommender.version, config.host, running.port)
    return running


async def reload_in_process(running: RunningServer, config: ServerConfig, encoder: Encoder,
                            wait_seconds: float = 0.0) -> SwitchResult:
    """Adopt the published version in this process: load it beside the one served, then swap."""
    previous = running.service.serving().version
    try:
        version_dir = resolve_version_dir(config.index)
    except TastebudError as exc:
        return SwitchResult(previous, previous, False, str(exc))
    if version_dir.name == previous:
        return SwitchResult(previous, previous, False, "already serving the published version")
    loop = asyncio.get_running_loop()
    try:
        recommender = await loop.run_in_executor(
            running.executor, lambda: open_recommender(version_dir, encoder, running.executor, running.store,
                                                       tuning_overrides=config.tuning_overrides(),
                                                       batching=config.batch_search))
    except (TastebudError, OSError) as exc:
        log.error("not adopting index version %s: %s", version_dir.name, exc)
        return SwitchResult(previous, previous, False, str(exc))
    running.service.recommender = recommender
    log.info("switched from %s to %s", previous, recommender.version)
    return SwitchResult(previous, recommender.version, True)


@contextlib.contextmanager
def shutdown_on_failure(executor: ThreadPoolExecutor) -> Iterator[None]:
    """Stop ``executor``'s threads when the block raises: a server that never started owns them."""
    try:
        yield
    except BaseException:
        executor.shutdown(wait=False)
        raise


def bind_port(server: grpc.aio.Server, host: str, port: int) -> int:
    """The port bound (port 0 picks one); a clear error, not grpc's RuntimeError, when it is taken."""
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise PreconditionError(f"could not bind {host}:{port}: is another server using the port?")
    return bound


async def bind_server(config: ServerConfig, service: RecommenderService, executor: ThreadPoolExecutor
                      ) -> RunningServer:
    """Bind and start a server of ``service`` and the Admin service, with health NOT_SERVING and
    reflection; the caller sets what it serves and flips health when ready."""
    server = grpc.aio.server(maximum_concurrent_rpcs=config.max_concurrent_rpcs)
    health_servicer = health.aio.HealthServicer()
    admin = AdminService(service, executor)
    recommender_pb2_grpc.add_RecommenderServicer_to_server(service, server)
    admin_pb2_grpc.add_AdminServicer_to_server(admin, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, ADMIN_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME),
                                        server)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    port = bind_port(server, config.host, config.port)
    await server.start()
    return RunningServer(server, port, health_servicer, service, executor, admin)


async def set_serving(running: RunningServer, serving: bool = True) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        await running.health.set(name, status)


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when asked for and installed (less per-call overhead), else asyncio's."""
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.info("uvloop is not installed: serving on the asyncio event loop")
            return None
        return uvloop.new_event_loop
    return None


async def until_stopped(what: str, stop: Callable[[float], Awaitable[None]], grace_seconds: float) -> None:
    """Say what is serving, wait for SIGTERM or SIGINT, then ``stop(grace_seconds)``: the life
    cycle of every tastebud server process (single, shard, router)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    print(f"tastebud {what} (Ctrl-C to stop)", flush=True)
    await stopping.wait()
    log.info("shutting down (grace %.1fs)", grace_seconds)
    await stop(grace_seconds)


async def serve(config: ServerConfig) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    running = await start_server(config)
    await until_stopped(f"serving on {config.host}:{running.port}", running.stop, config.grace_seconds)
