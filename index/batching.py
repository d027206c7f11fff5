"""Natural batching of shard searches: concurrent requests share one FAISS call.

While a shard is searching, the queries that arrive wait; when it is done they all go in the
next call, as one batch. At low load a query is searched at once (no timer, no added
latency); at high load the per-call costs (thread hand-over, Python around FAISS, FAISS's own
set-up) are paid once per batch instead of once per request.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Callable, Generic, Sequence, TypeVar

Request = TypeVar("Request")
Result = TypeVar("Result")


class NaturalBatcher(Generic[Request, Result]):
    """Runs ``run_batch(requests) -> results`` (same order) on ``executor``, one batch at a time."""

    def __init__(self, run_batch: Callable[[Sequence[Request]], Sequence[Result]], executor: Executor | None,
                 max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._run_batch = run_batch
        self._executor = executor
        self._max_batch = max_batch
        self._pending: list[tuple[Request, asyncio.Future]] = []
        self._draining = False
        self.batches = 0  # calls made, for tests and metrics
        self.requests = 0

    async def submit(self, request: Request) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((request, future))
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:self._max_batch], self._pending[self._max_batch:]
                live = [(r, f) for r, f in batch if not f.done()]  # a caller past its deadline is gone
                if not live:
                    continue
                self.batches += 1
                self.requests += len(live)
                try:
                    results = await loop.run_in_executor(self._executor, self._run_batch, [r for r, _ in live])
                except Exception as exc:  # every caller of the batch gets the error
                    for _, future in live:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(live, results):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = False
