"""First stage: fan a query out to every shard concurrently and merge their top-k exactly.

Talks to shards only through ``ShardClient``, so it is the same code whether the shards run in
this process or on other hosts. A shard that fails or misses the deadline is reported in
``missing_shards`` instead of failing the request: the caller decides whether a partial
answer is acceptable and says so in the response.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence, TypeVar

import numpy as np
import numpy.typing as npt

from tastebud.index.merge import MISSING_ID, take_positions, topk_positions
from tastebud.index.shards import ShardClient, ShardQuery
from tastebud.server.candidates import Candidates

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Retrieved:
    """Merged candidates of one query vector, and the shards that did not answer."""

    candidates: Candidates
    missing_shards: tuple[int, ...]


async def retrieve(shards: Sequence[ShardClient], query_vector: npt.NDArray[np.float32], query: ShardQuery,
                   timeout: float | None) -> Retrieved:
    """Search every shard for ``query_vector`` (float32[d]) and merge into the global top ``query.k``."""
    query = dataclasses.replace(query, with_vectors=True)
    queries = query_vector[None, :]
    outcomes = await ask_shards([(shard.answers_inline(query.space), functools.partial(shard.search, queries, query))
                                 for shard in shards], timeout)
    missing: list[int] = []
    scores, ids, vectors = [], [], []
    for shard, hits in zip(shards, outcomes):
        if hits is None:
            missing.append(shard.shard)
            continue
        if isinstance(hits, Exception):
            log.error("shard %d failed", shard.shard, exc_info=hits)
            missing.append(shard.shard)
            continue
        scores.append(hits.scores)
        ids.append(hits.ids)
        vectors.append(hits.vectors)
    dimension = len(query_vector)
    if not scores:
        empty = Candidates(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, dimension), np.float32))
        return Retrieved(empty, tuple(missing))
    all_scores = np.concatenate(scores, axis=1)
    all_ids = np.concatenate(ids, axis=1)
    positions = topk_positions(all_scores, all_ids, query.k)
    merged_ids = take_positions(all_ids, positions, MISSING_ID)[0]
    valid = merged_ids != MISSING_ID
    candidates = Candidates(
        ids=merged_ids[valid].astype(np.int64),
        scores=take_positions(all_scores, positions, -np.inf)[0][valid].astype(np.float32),
        vectors=take_positions(np.concatenate(vectors, axis=1), positions, 0.0)[0][valid].astype(np.float32),
    )
    return Retrieved(candidates, tuple(missing))


async def ask_shards(calls: Sequence[tuple[bool, Callable[[], Awaitable[T]]]], timeout: float | None
                     ) -> list[T | Exception | None]:
    """Per call, its result, the exception it raised, or None when it was not done within
    ``timeout`` (and was cancelled): a shard's failure is reported, not raised. Calls that must
    wait (threads, the network) run concurrently as tasks; calls marked inline (in-process shards
    that answer at once) are awaited in turn, sparing a task and a loop iteration each."""
    tasks = {i: asyncio.ensure_future(call()) for i, (inline, call) in enumerate(calls) if not inline}
    outcomes: dict[int, T | Exception | None] = {}
    for i, (inline, call) in enumerate(calls):
        if inline:
            try:
                outcomes[i] = await call()
            except Exception as exc:  # noqa: BLE001 - the caller reports it as a missing shard
                outcomes[i] = exc
    if tasks:
        done, pending = await asyncio.wait(tasks.values(), timeout=None if timeout is None else max(timeout, 0.0))
        for task in pending:
            task.cancel()
        for i, task in tasks.items():
            error = task.exception() if task in done else None
            if error is not None and not isinstance(error, Exception):
                raise error  # cancellation and the like are not a shard's failure
            outcomes[i] = (error or task.result()) if task in done else None
    return [outcomes[i] for i in range(len(calls))]


@dataclass(frozen=True, slots=True)
class Fetched:
    """Vectors of items spread over the shards; rows of shards in ``missing_shards`` are zeros."""

    vectors: npt.NDArray[np.float32]
    missing_shards: tuple[int, ...] = ()


async def fetch_vectors(shards: Sequence[ShardClient], shard_of_row: npt.NDArray[np.int32],
                        rows: npt.NDArray[np.int64], dimension: int, kind: str = "item",
                        timeout: float | None = None) -> Fetched:
    """Vectors of ``kind`` (float32[m, d], in the order of ``rows``) of items spread over the shards.
    A shard that fails or is not done within ``timeout`` is reported, not raised: the caller
    drops its rows or gives up."""
    out = np.zeros((len(rows), dimension), dtype=np.float32)
    if len(rows) == 0:
        return Fetched(out)
    owners = shard_of_row[rows]
    by_shard = {shard.shard: shard for shard in shards}
    groups = [(s, np.flatnonzero(owners == s)) for s in np.unique(owners).tolist()]
    results = await ask_shards([(by_shard[s].answers_inline(), functools.partial(by_shard[s].vectors, rows[pos], kind))
                                for s, pos in groups], timeout)
    missing = []
    for (shard, pos), vectors in zip(groups, results):
        if vectors is None or isinstance(vectors, Exception):
            log.warning("shard %d: vectors failed: %s", shard, vectors or "no answer in time")
            missing.append(shard)
            continue
        out[pos] = vectors
    return Fetched(out, tuple(missing))
