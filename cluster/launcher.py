"""The local launcher behind ``tastebud cluster up``: every shard replica and the router as child processes.

It runs on one machine the topology production runs on Kubernetes, so the demo and the
integration tests exercise real processes, real ports and gRPC's own balancing. It is not the
production path: it does not survive its own death (children run in their own process group so
that Ctrl-C reaches the launcher only and the stop order stays router first, then shards; a
SIGKILLed launcher leaves them running, their pids are printed and in ``pids.txt``).

Life of a cluster: ports are chosen, every replica is started and waited for until its
``grpc.health.v1`` Check says SERVING (a replica that exits first is an error naming it, with
the tail of its log), ``cluster.toml`` is written, the router is started and waited for, then
each process is supervised: one that dies is started again on the same port after an
exponential backoff, and each restart is logged with the exit code. :meth:`Launcher.stop` sends
SIGTERM to the router, then to the shards, and SIGKILL to whatever is still running after the
timeout. The command each process runs comes from a :class:`Commands` object, so tests can
run small stand-ins instead of tastebud.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Coroutine, Protocol, Sequence, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tastebud.cluster.config import SHARD_SERVICE, ClusterConfig, ShardTarget
from tastebud.errors import InvalidInputError, TastebudError

log = logging.getLogger(__name__)

ROUTER_SERVICE = "tastebud.v1.Recommender"
CLUSTER_FILE = "cluster.toml"
LOG_TAIL_LINES = 20
_T = TypeVar("_T")



class LaunchError(TastebudError):
    """The cluster could not be started: a process exited or never became SERVING."""


class Commands(Protocol):
    """The command lines the launcher runs; swapped in tests for stand-in servers."""

    def shard(self, index: Path, shard: int, host: str, port: int) -> list[str]: ...

    def router(self, cluster_file: Path, host: str, port: int) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class TastebudCommands:
    """``python -m tastebud.cli.main -v serve-shard|serve ...`` with this interpreter (so the
    children run the same installation as the launcher; ``-v`` puts INFO logs in their log files)."""

    python: str = sys.executable

    def shard(self, index: Path, shard: int, host: str, port: int) -> list[str]:
        return [self.python, "-m", "tastebud.cli.main", "-v", "serve-shard", "--index", str(index),
                "--shard", str(shard), "--port", str(port), "--host", host]

    def router(self, cluster_file: Path, host: str, port: int) -> list[str]:
        return [self.python, "-m", "tastebud.cli.main", "-v", "serve", "--cluster", str(cluster_file),
                "--port", str(port), "--host", host]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Restart delays: ``initial`` doubling up to ``maximum``; a process that ran ``reset_after``
    seconds before dying starts the sequence again (it was healthy, not crash-looping)."""

    initial: float = 0.5
    maximum: float = 30.0
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise InvalidInputError(f"backoff: need 0 < initial <= maximum, got {self.initial} and {self.maximum}")
        if self.reset_after <= 0:
            raise InvalidInputError(f"backoff: reset_after must be > 0, got {self.reset_after}")

    def next_delay(self, previous: float | None, ran_for: float) -> float:
        """The delay before the next restart, given the last one (None: never restarted) and how
        long the process ran this time."""
        if previous is None or ran_for >= self.reset_after:
            return self.initial
        return min(previous * 2, self.maximum)


@dataclass(frozen=True, slots=True)
class LaunchOptions:
    """What ``tastebud cluster up`` starts; ``shards=None`` reads the count from the index's manifest."""

    index: Path
    replicas: int = 2
    port: int = 50051  # the router's; 0 picks a free one
    host: str = "127.0.0.1"
    workdir: Path | None = None  # None: a new temporary folder (kept: it holds the logs)
    shard_base_port: int | None = None  # shard i replica r on base + i * replicas + r; None: free ports
    shards: int | None = None
    start_timeout: float = 300.0  # per process, until SERVING
    stop_timeout: float = 10.0  # per stage (router, then shards), before SIGKILL
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise InvalidInputError(f"--replicas must be >= 1, got {self.replicas}")
        if self.shards is not None and self.shards < 1:
            raise InvalidInputError(f"shards must be >= 1, got {self.shards}")
        if not 0 <= self.port <= 65535:
            raise InvalidInputError(f"--port must be within 0..65535, got {self.port}")
        if self.shard_base_port is not None and not 1 <= self.shard_base_port <= 65535:
            raise InvalidInputError(f"--shard-base-port must be within 1..65535, got {self.shard_base_port}")
        if self.start_timeout <= 0 or self.stop_timeout <= 0:
            raise InvalidInputError("start and stop timeouts must be > 0")


@dataclass(frozen=True, slots=True)
class ReplicaEndpoint:
    shard: int
    replica: int
    address: str  # host:port to dial
    port: int
    pid: int | None  # None while it is being restarted
    log: Path


@dataclass(frozen=True, slots=True)
class Endpoints:
    """A snapshot of the running cluster (pids change on restarts: ask :meth:`Launcher.endpoints` again)."""

    router: str  # host:port clients call
    router_port: int
    router_pid: int | None
    router_log: Path
    shards: tuple[tuple[ReplicaEndpoint, ...], ...]  # [shard][replica]
    cluster_file: Path
    workdir: Path

    def pids(self) -> list[int]:
        return [p for p in [self.router_pid, *(r.pid for s in self.shards for r in s)] if p is not None]

    def describe(self) -> str:
        """The endpoints as lines for a person at a terminal."""
        lines = [f"router   {self.router}  pid {self.router_pid}  log {self.router_log}"]
        for replicas in self.shards:
            for r in replicas:
                lines.append(f"shard {r.shard}  replica {r.replica}  {r.address}  pid {r.pid}  log {r.log}")
        lines.append(f"cluster file {self.cluster_file}")
        return "\n".join(lines)


def dial_host(host: str) -> str:
    """The address to connect to for a bind address (a wildcard bind is reached on loopback)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def shard_target(host: str, ports: Sequence[int]) -> str:
    """The gRPC target of one shard's replicas, e.g. ``ipv4:127.0.0.1:50061,127.0.0.1:50062``."""
    h = dial_host(host)
    scheme = "ipv6" if h.startswith("[") else "ipv4"
    return f"{scheme}:" + ",".join(f"{h}:{p}" for p in ports)


def pick_ports(host: str, count: int) -> list[int]:
    """``count`` distinct ports free right now (bound to port 0 together, then released)."""
    family = socket.AF_INET6 if ":" in dial_host(host) else socket.AF_INET
    bind = dial_host(host).strip("[]")
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind((bind, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def assign_ports(options: LaunchOptions, n_shards: int) -> tuple[int, list[list[int]]]:
    """The router's port and every replica's ([shard][replica]): from --shard-base-port or free."""
    n = n_shards * options.replicas
    if options.shard_base_port is not None:
        base = options.shard_base_port
        if base + n - 1 > 65535:
            raise InvalidInputError(f"--shard-base-port {base}: {n} replica ports do not fit below 65536")
        flat = list(range(base, base + n))
        if options.port in flat:
            raise InvalidInputError(f"--port {options.port} is inside the replica ports {base}..{base + n - 1} "
                                    "(--shard-base-port)")
        router = options.port or pick_ports(options.host, 1)[0]
        while router in flat:  # a free port picked for the router can still collide with a fixed range
            router = pick_ports(options.host, 1)[0]
    else:
        free = pick_ports(options.host, n + (options.port == 0))
        flat, router = free[:n], (options.port or free[n])
        if router in flat:
            raise InvalidInputError(f"--port {router} was picked for a replica too; choose another --port")
    r = options.replicas
    return router, [flat[i * r:(i + 1) * r] for i in range(n_shards)]


def shard_count(index: Path) -> int:
    """How many shards the published index at ``index`` has (its manifest)."""
    from tastebud.index.manifest import read_manifest
    from tastebud.index.publish import resolve_version_dir

    return len(read_manifest(resolve_version_dir(index)).shards)


def describe_exit(code: int | None) -> str:
    """``exit code 3`` or ``killed by SIGKILL`` (asyncio reports a signal as a negative code)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            return f"killed by signal {-code} (exit code {code})"
    return f"exit code {code}"


def _tail(path: Path, offset: int, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines written to ``path`` after ``offset`` (what this run printed)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join("    " + line for line in kept) if kept else "    (nothing)"


async def health_status(address: str, service: str, timeout: float = 1.0) -> int | None:
    """One ``grpc.health.v1`` Check: the status enum, or None when the server does not answer.

    A fresh channel per probe: a child binds its port only after its imports, and a reused
    channel would carry gRPC's reconnect backoff (seconds) over from the refused attempts."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.aio.AioRpcError:
            return None
    return reply.status


class _Child:
    """One supervised process (a replica or the router): its command, port, log and current run."""

    def __init__(self, name: str, argv: list[str], address: str, port: int, service: str, log_path: Path,
                 shard: int | None = None, replica: int | None = None) -> None:
        self.name, self.argv, self.address, self.port = name, argv, address, port
        self.service, self.log_path, self.shard, self.replica = service, log_path, shard, replica
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.log_offset = 0
        self.restarts = 0
        self.delay: float | None = None  # the last restart delay, None before the first restart
        self.serving = asyncio.Event()  # set while the current run has reported SERVING
        self.changed = asyncio.Condition()  # notified when a run starts, exits or becomes SERVING
        self.supervisor: asyncio.Task[None] | None = None
        self.announcer: asyncio.Task[None] | None = None  # logs when a restarted run is SERVING

    @property
    def pid(self) -> int | None:
        p = self.process
        return p.pid if p is not None and p.returncode is None else None

    async def start(self) -> None:
        """Start one run, output appended to the log file (a header line marks each run)."""
        with open(self.log_path, "ab") as out:
            self.log_offset = out.tell()
            out.write(f"--- launcher: starting {self.name} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: "
                      f"{' '.join(self.argv)}\n".encode())
            out.flush()
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            try:
                # Own process group: a terminal's Ctrl-C reaches the launcher only, which then
                # stops the router before the shards.
                self.process = await asyncio.create_subprocess_exec(
                    *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
                    env=env, process_group=0)
            except OSError as exc:
                self.process = None
                raise LaunchError(f"{self.name}: cannot start {self.argv[0]}: {exc.strerror or exc}") from exc
        self.started_at = time.monotonic()
        self.serving.clear()
        await self._notify()

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_serving(self, timeout: float) -> None:
        """Until this run's health says SERVING; LaunchError if it exits first or time runs out."""
        process = self.process
        assert process is not None
        exited = asyncio.ensure_future(process.wait())
        deadline = time.monotonic() + timeout
        try:
            while True:
                if exited.done():
                    raise LaunchError(f"{self.name} (pid {process.pid}) {describe_exit(process.returncode)} "
                                      f"during start-up; the end of its log {self.log_path}:\n"
                                      f"{_tail(self.log_path, self.log_offset)}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LaunchError(f"{self.name} (pid {process.pid}) did not report SERVING on "
                                      f"{self.address} ({self.service or 'server'} health) within {timeout:g} s; "
                                      f"the end of its log {self.log_path}:\n{_tail(self.log_path, self.log_offset)}")
                status = await health_status(self.address, self.service, timeout=min(1.0, max(left, 0.05)))
                if status == health_pb2.HealthCheckResponse.SERVING:
                    self.serving.set()
                    await self._notify()
                    return
                await asyncio.wait([exited], timeout=min(0.1, max(left, 0.0)))
        finally:
            if not exited.done():
                exited.cancel()

    async def supervise(self, backoff: Backoff, start_timeout: float, stopping: asyncio.Event,
                        on_restart: Callable[[], None]) -> None:
        """Restart this process whenever it dies, after a backoff, until the launcher stops;
        ``on_restart`` runs after each new start (the launcher rewrites pids.txt)."""
        while True:
            process = self.process
            if process is not None:
                code = await process.wait()
                what = f"(pid {process.pid}) {describe_exit(code)}"
            else:
                what = "could not be started"
            self.serving.clear()
            await self._notify()
            if stopping.is_set():
                return
            ran = time.monotonic() - self.started_at
            self.delay = backoff.next_delay(self.delay, ran)
            self.restarts += 1
            log.warning("%s %s after %.1f s; restart #%d in %.1f s (log %s)", self.name, what, ran, self.restarts,
                        self.delay, self.log_path)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=self.delay)
                return  # stopped during the backoff
            except asyncio.TimeoutError:
                pass
            try:
                await self.start()
            except LaunchError as exc:  # e.g. the executable vanished: try again, backing off
                log.error("%s", exc)
                self.process, self.started_at = None, time.monotonic()
                continue
            assert self.process is not None
            log.info("%s restarted as pid %d", self.name, self.process.pid)
            on_restart()
            if self.announcer is not None:
                self.announcer.cancel()
            self.announcer = asyncio.ensure_future(self._announce_serving(start_timeout))

    async def _announce_serving(self, timeout: float) -> None:
        """Log when a restarted run is SERVING again (or that it is not, after the start-up timeout)."""
        try:
            await self.wait_serving(timeout)
            log.info("%s (pid %s) is SERVING again", self.name, self.pid)
        except LaunchError as exc:
            log.warning("after restart #%d: %s", self.restarts, str(exc).splitlines()[0])


class Launcher:
    """A local cluster of shard replicas and a router, each its own supervised child process.

    ``await start()`` returns the endpoints once everything is SERVING; ``kill_replica`` and
    ``wait_replica_back`` let tests fail replicas on purpose; ``await stop()`` ends everything.
    One instance runs one cluster once, on the event loop that started it.
    """

    def __init__(self, options: LaunchOptions, commands: Commands | None = None) -> None:
        self.options = options
        self.commands: Commands = commands or TastebudCommands()
        self._replicas: list[list[_Child]] = []
        self._router: _Child | None = None
        self._stopping: asyncio.Event | None = None
        self._workdir: Path | None = None
        self._cluster_file: Path | None = None
        self._started = False

    # -- start ---------------------------------------------------------------------------------
    async def start(self) -> Endpoints:
        """Start every replica, wait for SERVING, write the cluster file, start the router and wait
        for it; then supervise. On any failure (or cancellation) whatever started is stopped."""
        if self._started:
            raise LaunchError("this launcher has already been started; make a new one")
        self._started = True
        self._stopping = asyncio.Event()
        o = self.options
        n_shards = o.shards if o.shards is not None else shard_count(o.index)
        router_port, ports = assign_ports(o, n_shards)
        workdir = Path(o.workdir) if o.workdir is not None else Path(tempfile.mkdtemp(prefix="tastebud-cluster-"))
        logs = workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._workdir, self._cluster_file = workdir, workdir / CLUSTER_FILE
        host = dial_host(o.host)
        index = Path(o.index).resolve()
        for s in range(n_shards):
            self._replicas.append([
                _Child(f"shard {s} replica {r}", self.commands.shard(index, s, o.host, port), f"{host}:{port}", port,
                       SHARD_SERVICE, logs / f"shard-{s}-replica-{r}.log", shard=s, replica=r)
                for r, port in enumerate(ports[s])])
        self._router = _Child("router", self.commands.router(self._cluster_file, o.host, router_port),
                              f"{host}:{router_port}", router_port, ROUTER_SERVICE, logs / "router.log")
        try:
            replicas = [c for shard in self._replicas for c in shard]
            for child in replicas:
                await child.start()
            self._write_pids()
            await _all_or_nothing([c.wait_serving(o.start_timeout) for c in replicas])
            config = ClusterConfig(index=index, shards=tuple(
                ShardTarget(s, shard_target(o.host, ports[s])) for s in range(n_shards)))
            _write_atomically(self._cluster_file, config.to_toml())
            await self._router.start()
            self._write_pids()
            await self._router.wait_serving(o.start_timeout)
        except BaseException:
            await self._terminate_all()
            raise
        for child in self._children():
            child.supervisor = asyncio.ensure_future(child.supervise(o.backoff, o.start_timeout, self._stopping,
                                                                   self._write_pids))
        log.info("cluster up: router %s, %d shards x %d replicas", self._router.address, n_shards, o.replicas)
        return self.endpoints()

    def _children(self) -> list[_Child]:
        """Every child, the router first (the stop order)."""
        return ([self._router] if self._router else []) + [c for shard in self._replicas for c in shard]

    def _write_pids(self) -> None:
        """``pids.txt``, rewritten on every (re)start: what to kill by hand if the launcher itself
        was SIGKILLed (after a stop it lists the pids of the last run)."""
        assert self._workdir is not None
        lines = [f"{c.pid} {c.name}" for c in self._children() if c.pid is not None]
        _write_atomically(self._workdir / "pids.txt", "\n".join(lines) + "\n")

    # -- state ---------------------------------------------------------------------------------
    def endpoints(self) -> Endpoints:
        """Where everything listens now, with current pids."""
        if self._router is None or self._workdir is None or self._cluster_file is None:
            raise LaunchError("the cluster has not been started")
        r = self._router
        shards = tuple(tuple(ReplicaEndpoint(c.shard or 0, c.replica or 0, c.address, c.port, c.pid, c.log_path)
                             for c in shard) for shard in self._replicas)
        return Endpoints(router=r.address, router_port=r.port, router_pid=r.pid, router_log=r.log_path,
                         shards=shards,
                         cluster_file=self._cluster_file, workdir=self._workdir)

    def restarts(self, shard: int | None = None, replica: int = 0) -> int:
        """How many times a replica (or with ``shard=None`` the router) has been restarted."""
        return self._child(shard, replica).restarts

    def _child(self, shard: int | None, replica: int) -> _Child:
        if shard is None:
            if self._router is None:
                raise LaunchError("the cluster has not been started")
            return self._router
        if not 0 <= shard < len(self._replicas) or not 0 <= replica < len(self._replicas[shard]):
            raise InvalidInputError(f"no shard {shard} replica {replica} in this cluster "
                                    f"({len(self._replicas)} shards x {self.options.replicas} replicas)")
        return self._replicas[shard][replica]

    # -- failures on purpose (tests) ---------------------------------------------------------
    def kill_replica(self, shard: int | None, replica: int = 0, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to a replica (``shard=None``: the router); returns the pid signalled. The
        supervisor restarts it like any other death."""
        child = self._child(shard, replica)
        pid = child.pid
        if pid is None:
            raise LaunchError(f"{child.name} is not running (being restarted?)")
        os.kill(pid, sig)
        return pid

    async def wait_replica_back(self, shard: int | None, replica: int = 0, old_pid: int | None = None,
                                timeout: float = 60.0) -> int:
        """Until the replica runs under a pid other than ``old_pid`` and reports SERVING; its pid."""
        child = self._child(shard, replica)

        def back() -> bool:
            return child.pid is not None and child.pid != old_pid and child.serving.is_set()

        async def wait() -> None:
            async with child.changed:
                await child.changed.wait_for(back)

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise LaunchError(f"{child.name} was not back and SERVING within {timeout:g} s "
                              f"(restarts so far: {child.restarts}; log {child.log_path})") from None
        assert child.pid is not None
        return child.pid

    # -- stop ----------------------------------------------------------------------------------
    async def stop(self) -> dict[str, int | None]:
        """SIGTERM the router, wait, then the shards, wait; SIGKILL what outlives ``stop_timeout``.
        Returns each process's exit code by name (negative: the signal that ended it)."""
        return await self._terminate_all()

    async def _terminate_all(self) -> dict[str, int | None]:
        if self._stopping is not None:
            self._stopping.set()
        for child in self._children():
            for task in (child.supervisor, child.announcer):
                if task is not None:
                    task.cancel()
        codes: dict[str, int | None] = {}
        stages = [[self._router] if self._router else [], [c for shard in self._replicas for c in shard]]
        for stage in stages:
            codes.update(await _terminate(stage, self.options.stop_timeout))
        tasks = [t for c in self._children() for t in (c.supervisor, c.announcer) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        return codes


async def _terminate(children: Sequence[_Child], timeout: float) -> dict[str, int | None]:
    """SIGTERM these children together, SIGKILL the ones still running after ``timeout``."""
    running = [c for c in children if c.process is not None and c.process.returncode is None]
    for c in running:
        _signal(c, signal.SIGTERM)

    async def reap(c: _Child) -> None:
        assert c.process is not None
        try:
            await asyncio.wait_for(c.process.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("%s (pid %d) did not stop within %g s of SIGTERM: SIGKILL", c.name, c.process.pid, timeout)
            _signal(c, signal.SIGKILL)
            await c.process.wait()

    await asyncio.gather(*(reap(c) for c in running))
    return {c.name: c.process.returncode if c.process is not None else None for c in children}


def _signal(child: _Child, sig: int) -> None:
    assert child.process is not None
    try:
        child.process.send_signal(sig)
    except ProcessLookupError:
        pass


async def _all_or_nothing(coroutines: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run together; the first failure cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class LauncherThread:
    """A :class:`Launcher` on its own event loop in a daemon thread, for synchronous tests
    (the same shape as ``tests/integration/live_server.ServerThread``)::

        with LauncherThread(LaunchOptions(index=root, port=0, workdir=tmp_path)) as cluster:
            pid = cluster.kill_replica(1, 0)
            cluster.wait_replica_back(1, 0, pid)
    """

    def __init__(self, options: LaunchOptions, commands: Commands | None = None) -> None:
        self.launcher = Launcher(options, commands)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tastebud-launcher", daemon=True)
        self._thread.start()

    def _call(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> Endpoints:
        try:
            return self._call(self.launcher.start())
        except BaseException:
            self._close()
            raise

    def __enter__(self) -> LauncherThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def endpoints(self) -> Endpoints:
        return self._call(_value(self.launcher.endpoints))

    def kill_replica(self, shard: int | None, replica: int = 0, sig: int = signal.SIGKILL) -> int:
        return self._call(_value(lambda: self.launcher.kill_replica(shard, replica, sig)))

    def wait_replica_back(self, shard: int | None, replica: int = 0, old_pid: int | None = None,
                          timeout: float = 60.0) -> int:
        return self._call(self.launcher.wait_replica_back(shard, replica, old_pid, timeout))

    def stop(self) -> dict[str, int | None]:
        try:
            return self._call(self.launcher.stop())
        finally:
            self._close()

    def _close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def _value(fn: Callable[[], _T]) -> _T:
    """Run a plain function on the launcher's loop (its state belongs to that thread)."""
    return fn()


async def run_until_signalled(options: LaunchOptions, commands: Commands | None = None,
                              print_line: Callable[[str], None] = print) -> int:
    """Start the cluster, print its endpoints, supervise until SIGINT/SIGTERM, stop; 0 on a clean stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    launcher = Launcher(options, commands)
    try:
        starting = asyncio.ensure_future(launcher.start())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # interrupted during start-up: start() stops what it started
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            print_line("interrupted during start-up; everything started was stopped")
            return 0
        stopped.cancel()
        endpoints = starting.result()  # raises LaunchError
        try:
            print_line(endpoints.describe())
            print_line(f"logs in {endpoints.workdir / 'logs'}; Ctrl-C or SIGTERM stops everything")
            await stop.wait()
            print_line("stopping: router first, then the shards")
        finally:  # also when printing fails (a closed pipe): never leave the children running
            codes = await launcher.stop()
        print_line("stopped: " + ", ".join(f"{name} {describe_exit(code)}" for name, code in codes.items()))
        return 0
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def run_cluster(options: LaunchOptions, commands: Commands | None = None,
                print_line: Callable[[str], None] = print) -> int:
    """``tastebud cluster up``: run the cluster in the foreground until Ctrl-C or SIGTERM."""
    return asyncio.run(run_until_signalled(options, commands, print_line))
