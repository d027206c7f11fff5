"""Natural batching: concurrent shard searches share FAISS calls and get their own answers."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tastebud.index import shards as shards_module
from tastebud.index.batching import NaturalBatcher
from tastebud.index.faiss_index import build_shard_indexes
from tastebud.index.filters import ItemFilter, ItemTable
from tastebud.index.shards import LocalShard, ShardQuery, VectorSpace


def test_requests_arriving_while_a_batch_runs_go_together_in_the_next():
    gate = threading.Event()
    seen: list[list[int]] = []

    def run(batch):
        seen.append(list(batch))
        if len(seen) == 1:
            gate.wait(5)  # hold the first call until the others have queued
        return [x * 10 for x in batch]

    async def main():
        batcher = NaturalBatcher(run, ThreadPoolExecutor(1))
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3, 4)]
        await asyncio.sleep(0.05)
        gate.set()
        return await first, await asyncio.gather(*rest), batcher

    first, rest, batcher = asyncio.run(main())
    assert first == 10 and rest == [20, 30, 40]
    assert seen == [[1], [2, 3, 4]] and (batcher.batches, batcher.requests) == (2, 4)


def test_a_failing_batch_fails_each_of_its_callers_and_the_next_batch_still_runs():
    def run(batch):
        if "bad" in batch:
            raise RuntimeError("faiss said no")
        return batch

    async def main():
        batcher = NaturalBatcher(run, ThreadPoolExecutor(1))
        results = await asyncio.gather(batcher.submit("bad"), return_exceptions=True)
        return results, await batcher.submit("good")

    results, good = asyncio.run(main())
    assert isinstance(results[0], RuntimeError) and good == "good"


def test_a_caller_that_gave_up_does_not_break_the_batch():
    gate = threading.Event()

    def run(batch):
        gate.wait(5)
        return batch

    async def main():
        batcher = NaturalBatcher(run, ThreadPoolExecutor(1))
        first = asyncio.ensure_future(batcher.submit("a"))
        await asyncio.sleep(0.02)
        impatient = asyncio.ensure_future(batcher.submit("b"))
        patient = asyncio.ensure_future(batcher.submit("c"))
        await asyncio.sleep(0.02)
        impatient.cancel()
        gate.set()
        return await first, await patient

    assert asyncio.run(main()) == ("a", "c")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture
def shard_pair(monkeypatch):
    """The same Flat shard twice, batching on and off, both searching on a thread pool."""
    monkeypatch.setattr(shards_module, "INLINE_SEARCH_MAX_FLOATS", 0)
    rng = np.random.default_rng(3)
    n, d = 400, 16
    item = unit(rng.standard_normal((n, d + 1)))
    ids = np.arange(n, dtype=np.int64)
    table = ItemTable(np.full(n, 2000, np.int32), {"genres": [("a",) if i % 2 else ("b",) for i in range(n)]})
    executor = ThreadPoolExecutor(2)

    def make(batching: bool) -> LocalShard:
        space = VectorSpace(build_shard_indexes(item, [ids], "Flat")[0], item)
        return LocalShard(0, {"item": space}, item[:, :d], ids, table, shards_module.SearchTuning(), executor,
                          "Flat", "t", batching=batching)

    return make(True), make(False), rng


def test_batched_searches_answer_exactly_what_single_searches_do(shard_pair):
    batched, single, rng = shard_pair
    queries = unit(rng.standard_normal((24, 17)))
    requests = [ShardQuery(k=int(k), exclude=rng.choice(400, size=int(e), replace=False).astype(np.int64),
                           with_vectors=True)
                for k, e in zip(rng.integers(1, 30, 24), rng.integers(0, 60, 24))]
    requests[5] = ShardQuery(k=7, item_filter=ItemFilter(include=(("genres", frozenset({"a"})),)))  # not batchable

    async def fan(shard):
        return await asyncio.gather(*(shard.search(q[None, :], r) for q, r in zip(queries, requests)))

    got, want = asyncio.run(fan(batched)), asyncio.run(fan(single))
    for g, w, r in zip(got, want, requests):
        np.testing.assert_array_equal(g.ids, w.ids)
        np.testing.assert_allclose(g.scores, w.scores, atol=1e-6)
        assert not np.isin(g.ids, r.exclude).any()
        if r.with_vectors:
            np.testing.assert_array_equal(g.vectors, w.vectors)
    batcher = batched._batchers["item"]
    assert batcher.requests == 23 and batcher.batches < 23  # concurrent requests shared calls
