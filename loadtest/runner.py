"""Run a load test against a live server: open loop (a schedule) or closed loop (N callers).

Everything the run measures goes into ``RunStats``: one merge-able latency histogram per RPC,
errors per RPC by gRPC status code, and a histogram per wall-clock second for the
latency-over-time plot. Warm-up calls are sent but not recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import grpc

from tastebud.errors import InvalidInputError
from tastebud.loadtest.histogram import LatencyHistogram
from tastebud.loadtest.schedule import send_times
from tastebud.v1 import recommender_pb2_grpc as pb_grpc

MODES = ("open", "closed")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``rate`` (calls/s) drives the open loop, ``concurrency`` the closed loop."""

    target: str
    mode: str = "closed"
    rate: float = 100.0
    concurrency: int = 8
    duration: float = 30.0
    warmup: float = 5.0
    deadline: float = 1.0
    seed: int = 0
    arrivals: str = "poisson"
    max_outstanding: int = 10_000
    start_at: float | None = None  # wall-clock epoch seconds; several generators start together
    ready_timeout: float = 120.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(f"--mode must be open or closed, got {self.mode!r}")
        if self.mode == "open" and self.rate <= 0:
            raise InvalidInputError(f"--rate must be > 0, got {self.rate}")
        if self.mode == "closed" and self.concurrency < 1:
            raise InvalidInputError(f"--concurrency must be >= 1, got {self.concurrency}")
        if self.duration <= 0 or self.warmup < 0 or self.deadline <= 0:
            raise InvalidInputError("--duration and --deadline must be > 0 and --warmup >= 0")


@dataclass(slots=True)
class RunStats:
    """What one generator measured (merge-able with other generators' stats via their JSON)."""

    histograms: dict[str, LatencyHistogram] = field(default_factory=lambda: defaultdict(LatencyHistogram))
    errors: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    windows: dict[int, LatencyHistogram] = field(default_factory=lambda: defaultdict(LatencyHistogram))
    sent: int = 0
    not_sent: int = 0
    measured_seconds: float = 0.0
    started_at: float = 0.0

    def record(self, rpc: str, code: grpc.StatusCode, seconds: float, wall_second: int) -> None:
        self.histograms[rpc].record(seconds)
        self.windows[wall_second].record(seconds)
        if code != grpc.StatusCode.OK:
            self.errors[rpc][code.name] += 1


def _methods(channel: grpc.aio.Channel) -> dict[str, Callable]:
    from grpc_health.v1 import health_pb2_grpc

    stub = pb_grpc.RecommenderStub(channel)
    return {"recommend": stub.Recommend, "similar": stub.SimilarItems, "search": stub.SearchItems,
            "record": stub.RecordInteractions, "health": health_pb2_grpc.HealthStub(channel).Check}


async def wait_until_serving(channel: grpc.aio.Channel, target: str, timeout: float) -> None:
    """Block until the server's ``grpc.health.v1`` says SERVING (it is NOT_SERVING while loading)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    give_up = time.monotonic() + timeout
    status = "no answer"
    while time.monotonic() < give_up:
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2.0)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
        await asyncio.sleep(0.25)
    raise InvalidInputError(f"--target {target}: not SERVING after {timeout:g} s (last health answer: {status})")


async def _call(method: Callable, request: object, deadline: float) -> grpc.StatusCode:
    try:
        await method(request, timeout=deadline)
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        return exc.code()


async def run_load(options: RunOptions, requests: Sequence[tuple[str, object]]) -> RunStats:
    """Send ``requests`` (cycled) to ``options.target`` and measure; returns the stats."""
    if not requests:
        raise InvalidInputError("no requests to send")
    stats = RunStats()
    async with grpc.aio.insecure_channel(options.target) as channel:
        await wait_until_serving(channel, options.target, options.ready_timeout)
        methods = _methods(channel)
        loop = asyncio.get_running_loop()
        if options.start_at is not None:
            await asyncio.sleep(max(0.0, options.start_at - time.time()))
        start = loop.time()
        wall0 = time.time()
        measure_from = start + options.warmup
        end = measure_from + options.duration
        stats.started_at = wall0 + options.warmup
        progress = asyncio.create_task(_progress(stats, loop, measure_from, end)) if options.progress else None
        try:
            if options.mode == "open":
                await _open_loop(options, requests, methods, stats, loop, start, wall0, measure_from)
            else:
                await _closed_loop(options, requests, methods, stats, loop, start, wall0, measure_from, end)
        finally:
            if progress is not None:
                progress.cancel()
                print(file=sys.stderr)
        stats.measured_seconds = options.duration
    return stats


async def _open_loop(options: RunOptions, requests, methods, stats: RunStats, loop, start: float, wall0: float,
                     measure_from: float) -> None:
    """Send on the schedule whatever happens to earlier calls; latency counts from the scheduled time."""
    schedule = send_times(options.rate, options.warmup + options.duration, options.seed, options.arrivals)
    outstanding: set[asyncio.Task] = set()

    async def one(rpc: str, request: object, scheduled: float) -> None:
        code = await _call(methods[rpc], request, options.deadline)
        if scheduled >= measure_from:
            stats.record(rpc, code, loop.time() - scheduled, int(wall0 + scheduled - start))

    for offset, (rpc, request) in zip(schedule.tolist(), itertools.cycle(requests)):
        scheduled = start + offset
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(outstanding) >= options.max_outstanding:
            stats.not_sent += 1  # the generator itself is saturated: reported, never hidden
            continue
        task = asyncio.create_task(one(rpc, request, scheduled))
        outstanding.add(task)
        task.add_done_callback(outstanding.discard)
        stats.sent += 1
    if outstanding:
        await asyncio.wait(outstanding)


async def _closed_loop(options: RunOptions, requests, methods, stats: RunStats, loop, start: float, wall0: float,
                       measure_from: float, end: float) -> None:
    """``concurrency`` callers, each sending its next request when the last one is answered."""
    source = itertools.cycle(requests)

    async def caller() -> None:
        while (sent := loop.time()) < end:
            rpc, request = next(source)
            stats.sent += 1
            code = await _call(methods[rpc], request, options.deadline)
            if sent >= measure_from:
                stats.record(rpc, code, loop.time() - sent, int(wall0 + sent - start))

    await asyncio.gather(*(caller() for _ in range(options.concurrency)))


async def _progress(stats: RunStats, loop, measure_from: float, end: float) -> None:
    """One live line on stderr: elapsed, calls, errors, rate and p99 of the last second."""
    last_count, last_time = 0, loop.time()
    while True:
        await asyncio.sleep(1.0)
        now = loop.time()
        done = sum(h.count for h in stats.histograms.values())
        errors = sum(sum(c.values()) for c in stats.errors.values())
        rate = (done - last_count) / max(now - last_time, 1e-9)
        last_count, last_time = done, now
        recent = stats.windows.get(int(time.time()) - 1)
        p99 = f"{recent.percentile_ms(99):7.2f} ms" if recent is not None and recent.count else "      -"
        phase = "warm-up" if now < measure_from else f"{min(now, end) - measure_from:5.0f}s/{end - measure_from:.0f}s"
        print(f"\r[{phase}] sent {stats.sent:>8}  recorded {done:>8}  errors {errors:>5}  "
              f"{rate:8.1f}/s  p99 {p99}", end="", file=sys.stderr, flush=True)
