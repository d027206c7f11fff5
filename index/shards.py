"""The shard boundary: the ``ShardClient`` interface and its in-process implementation.

Retrieval talks to shards only through ``ShardClient`` (async ``search``, ``vectors``,
``info``), so a shard can later live in another process or host behind gRPC without a change
to the code that fans out and merges. Filters and exclusions travel as a compact
``ShardQuery`` and are applied *inside* the shard (a FAISS ID selector over its local ids), so
a caller never ships per-item masks.
"""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import numpy.typing as npt

from tastebud.errors import IndexIntegrityError
from tastebud.index.batching import NaturalBatcher
from tastebud.index.faiss_index import SearchTuning, parameter_maker
from tastebud.index.filters import ItemFilter, ItemTable
from tastebud.index.manifest import ShardEntry
from tastebud.index.merge import MISSING_ID, topk_rows

# A filtered search is done exactly over just the allowed items when they are few, both in
# number and as a share of the shard: cheaper than a graph walk that skips most nodes, and it
# never under-fills. When nearly everything is allowed (a user's seen items excluded), the
# index's own search with an ID selector is far cheaper than gathering and scoring every row.
EXACT_SUBSET_MAX = 20_000
EXACT_SUBSET_MAX_SHARE = 0.25

# Requests may share one FAISS call (``NaturalBatcher``) when they have no filter and exclude at
# most this many of the shard's items: the batch searches k + exclusions and drops them after.
BATCH_MAX_EXCLUDED = 256

# A search over at most this many stored floats (items x dimensions) runs inline on the
# caller's thread: it takes tens of microseconds, and handing it to a thread pool costs more
# than that (queue, wake-up, GIL hand-over). Bigger searches go to the executor, where FAISS
# runs without the GIL beside the Python work of other requests.
INLINE_SEARCH_MAX_FLOATS = 2_000_000

_NO_IDS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class ShardQuery:
    """What a shard needs besides the vectors: k, the filter, global ids to leave out/keep, and
    which space to search (``item`` for recommendations, ``text`` for search)."""

    k: int
    item_filter: ItemFilter | None = None
    exclude: npt.NDArray[np.int64] = field(default_factory=lambda: _NO_IDS)
    restrict_to: npt.NDArray[np.int64] | None = None
    with_vectors: bool = False
    space: str = "item"


@dataclass(frozen=True, slots=True)
class ShardHits:
    """Per query, the shard's best k: scores float32[q, k] (best first), global ids int64[q, k]
    padded with -1, and when asked the hits' vectors float32[q, k, d] (zeros for padding)."""

    scores: npt.NDArray[np.float32]
    ids: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32] | None = None


@dataclass(frozen=True, slots=True)
class ShardInfo:
    shard: int
    count: int
    factory: str
    version: str


class ShardClient(Protocol):
    """One shard of the index, wherever it runs."""

    @property
    def shard(self) -> int: ...

    async def search(self, queries: npt.NDArray[np.float32], query: ShardQuery) -> ShardHits:
        """Top-k of this shard's items for each row of ``queries`` (float32[q, d])."""
        ...

    async def vectors(self, global_ids: npt.NDArray[np.int64], kind: str = "item") -> npt.NDArray[np.float32]:
        """Vectors (float32[m, d]) of items of this shard, by global id: ``item`` and ``text``
        are the searchable spaces, ``query`` the items' query-side vectors (user tower input)."""
        ...

    def info(self) -> ShardInfo: ...

    def answers_inline(self, space: str | None = None) -> bool:
        """Whether a search of ``space`` (None: a vectors lookup) completes without waiting, so
        a caller may await it directly instead of making it a task."""
        ...


@dataclass(frozen=True, slots=True)
class VectorSpace:
    """One searchable space of a shard: a FAISS index over local ids and the same vectors as an array.

    ``drops_last_column``: this space is another one read without its last column. The content
    model's item vectors are [t_j, prior_j]: searching them with [q, 0] scores exactly q . t_j,
    so the text space of a content index is its item space, stored and searched once."""

    index: Any
    vectors: npt.NDArray[np.float32]
    drops_last_column: bool = False

    def query(self, queries: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if not self.drops_last_column:
            return np.ascontiguousarray(queries, dtype=np.float32)
        return np.ascontiguousarray(np.pad(queries, ((0, 0), (0, 1))), dtype=np.float32)

    def rows(self, local: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        out = np.asarray(self.vectors[local], dtype=np.float32)
        return out[..., :-1] if self.drops_last_column else out

    @property
    def width(self) -> int:
        return self.vectors.shape[1] - (1 if self.drops_last_column else 0)


class LocalShard:
    """A shard held in this process: a FAISS index per space, the vectors, global ids and filter table.

    Searches run on ``executor`` (FAISS releases the GIL), so shards of one request run in
    parallel and the event loop never blocks.
    """

    def __init__(self, shard: int, spaces: dict[str, VectorSpace], query_vectors: npt.NDArray[np.float32],
                 global_ids: npt.NDArray[np.int64], table: ItemTable, tuning: SearchTuning,
                 executor: Executor | None, factory: str, version: str, batching: bool = True) -> None:
        for name, space in spaces.items():
            if space.index.ntotal != len(global_ids) or len(space.vectors) != len(global_ids):
                raise IndexIntegrityError(
                    f"shard {shard} {name} space: index has {space.index.ntotal} vectors, vectors file "
                    f"{len(space.vectors)}, ids file {len(global_ids)}; they must agree")
        if len(query_vectors) != len(global_ids) or len(table) != len(global_ids):
            raise IndexIntegrityError(f"shard {shard}: {len(query_vectors)} query vectors and {len(table)} "
                                      f"table rows for {len(global_ids)} items")
        self._shard = shard
        self._spaces = spaces
        self._query_vectors = query_vectors
        self._global_ids = global_ids
        # Global id -> local row (-1: another shard's): one gather per lookup, the ids being dense.
        self._local_of = np.full(int(global_ids.max()) + 1 if len(global_ids) else 0, -1, dtype=np.int32)
        self._local_of[global_ids] = np.arange(len(global_ids))
        self._table = table
        self._tuning = tuning
        self._executor = executor
        self._factory = factory
        self._version = version
        self._inline = {name: _cheap_to_search(space, factory) for name, space in spaces.items()}
        self._make_params = {name: parameter_maker(space.index) for name, space in spaces.items()}
        # Only spaces searched on the executor batch: an inline search has no hand-over to share.
        self._batchers = {name: NaturalBatcher(self._search_batch_sync, executor)
                          for name in spaces if not self._inline[name]} if batching and executor is not None else {}

    @classmethod
    def open(cls, version_dir: Path, entry: ShardEntry, table: ItemTable, tuning: SearchTuning,
             executor: Executor | None, factory: str, version: str, dimensions: dict[str, int],
             shared: dict[str, str] | None = None, batching: bool = True) -> "LocalShard":
        """Load one shard's files (already checksummed by the caller) and check their shapes.
        ``shared`` maps a space stored as another one's leading columns to that space."""
        import faiss

        spaces = {}
        for name, dimension in dimensions.items():
            if name in (shared or {}):
                continue
            index = faiss.read_index(str(version_dir / entry.files[f"{name}_index"]))
            # A plain ndarray over the mapped file: numpy's memmap subclass costs ~15 us per lookup.
            vectors = np.asarray(np.load(version_dir / entry.files[f"{name}_vectors"], mmap_mode="r",
                                         allow_pickle=False))
            if index.d != dimension or vectors.shape[1] != dimension:
                raise IndexIntegrityError(f"shard {entry.shard} {name} space: {index.d}-d index, "
                                          f"{vectors.shape[1]}-d vectors, the manifest says {dimension}")
            if index.ntotal != entry.count:
                raise IndexIntegrityError(f"shard {entry.shard}: {index.ntotal} vectors, the manifest says {entry.count}")
            spaces[name] = VectorSpace(index, vectors)
        for name, source in (shared or {}).items():
            base = spaces[source]
            if base.vectors.shape[1] - 1 != dimensions[name]:
                raise IndexIntegrityError(f"shard {entry.shard}: the {name} space is read from the {source} space, "
                                          f"which is {base.vectors.shape[1]}-d, not {dimensions[name]} + 1")
            spaces[name] = VectorSpace(base.index, base.vectors, drops_last_column=True)
        query_vectors = np.asarray(np.load(version_dir / entry.files["query_vectors"], mmap_mode="r",
                                           allow_pickle=False))
        if query_vectors.ndim != 2 or query_vectors.shape[1] != dimensions["item"] - 1:
            raise IndexIntegrityError(f"shard {entry.shard}: query vectors of shape {query_vectors.shape}, the item "
                                      f"space has {dimensions['item']} dimensions (query vectors need one fewer)")
        global_ids = np.load(version_dir / entry.files["ids"], allow_pickle=False).astype(np.int64)
        return cls(entry.shard, spaces, query_vectors, global_ids, table.subset(global_ids), tuning, executor,
                   factory, version, batching)

    @property
    def shard(self) -> int:
        return self._shard

    @property
    def tuning(self) -> SearchTuning:
        return self._tuning

    @property
    def global_ids(self) -> npt.NDArray[np.int64]:
        """The global id (item row) of each of this shard's local rows, ascending."""
        return self._global_ids

    def query_width(self, space: str) -> int:
        """Dimensions of a query vector of ``space`` (``item`` or ``text``)."""
        return self._spaces[space].width

    def info(self) -> ShardInfo:
        return ShardInfo(self._shard, len(self._global_ids), self._factory, self._version)

    def _local_rows(self, global_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Local rows of those global ids that belong to this shard (others, any value, are skipped)."""
        if len(self._global_ids) == 0 or len(global_ids) == 0:
            return np.zeros(0, dtype=np.int64)
        inside = global_ids[(global_ids >= 0) & (global_ids < len(self._local_of))]
        local = self._local_of[inside]
        return local[local >= 0].astype(np.int64)

    def _allowed(self, query: ShardQuery) -> npt.NDArray[np.bool_] | None:
        """bool[n_local] of searchable items, or None when every item is."""
        if (query.item_filter is None or query.item_filter.is_empty()) and query.restrict_to is None \
                and len(query.exclude) == 0:
            return None
        allowed = self._table.mask(query.item_filter)
        if query.restrict_to is not None:
            only = np.zeros(len(allowed), dtype=bool)
            only[self._local_rows(query.restrict_to)] = True
            allowed &= only
        allowed[self._local_rows(query.exclude)] = False
        return allowed

    def search_sync(self, queries: npt.NDArray[np.float32], query: ShardQuery) -> ShardHits:
        """The blocking search behind :meth:`search`."""
        import faiss

        space = self._spaces[query.space]
        queries = space.query(queries)
        k = query.k
        allowed = self._allowed(query)
        n_allowed = len(self._global_ids) if allowed is None else int(allowed.sum())
        if n_allowed == 0:
            local = np.full((len(queries), k), MISSING_ID, dtype=np.int64)
            scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        elif allowed is not None and n_allowed <= min(EXACT_SUBSET_MAX, EXACT_SUBSET_MAX_SHARE * len(allowed)):
            rows = np.flatnonzero(allowed).astype(np.int64)
            sub_scores = (queries @ np.asarray(space.vectors[rows], dtype=np.float32).T).astype(np.float32)
            scores, local = topk_rows(sub_scores, np.broadcast_to(rows, sub_scores.shape), k)
        else:
            selector = None
            if allowed is not None:
                bitmap = np.packbits(allowed, bitorder="little")
                selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
            params = self._make_params[query.space](self._tuning, selector)
            scores, local = space.index.search(queries, min(k, len(self._global_ids)), params=params)
            if scores.shape[1] < k:
                pad = k - scores.shape[1]
                scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
                local = np.pad(local, ((0, 0), (0, pad)), constant_values=MISSING_ID)
            scores = np.where(local == MISSING_ID, -np.inf, scores).astype(np.float32)
        # Index only real hits: an empty shard has no row 0 to stand in for the padding.
        return self._hits(space, scores, local, query.with_vectors)

    def _batchable(self, queries: npt.NDArray[np.float32], query: ShardQuery) -> npt.NDArray[np.int64] | None:
        """The query's excluded local rows when it can join a batch, else None."""
        if len(queries) != 1 or query.space not in self._batchers or query.restrict_to is not None or \
                (query.item_filter is not None and not query.item_filter.is_empty()):
            return None
        excluded = self._local_rows(query.exclude)
        return excluded if len(excluded) <= BATCH_MAX_EXCLUDED else None

    def _search_batch_sync(self, requests: Sequence[tuple[npt.NDArray[np.float32], ShardQuery,
                                                          npt.NDArray[np.int64]]]) -> list[ShardHits]:
        """One FAISS call for single-query requests of one space with no filter: each asks for
        k + its exclusions, which are dropped afterwards (the same top k a selector would give)."""
        space = self._spaces[requests[0][1].space]
        n = len(self._global_ids)
        want = max(q.k + len(excluded) for _, q, excluded in requests)
        stacked = space.query(np.concatenate([queries for queries, _, _ in requests]))
        params = self._make_params[requests[0][1].space](
            dataclasses.replace(self._tuning, ef_search=max(self._tuning.ef_search, want)))
        all_scores, all_local = space.index.search(stacked, min(want, n), params=params)
        out = []
        for (_, query, excluded), scores, local in zip(requests, all_scores, all_local):
            keep = (local != MISSING_ID) & ~np.isin(local, excluded)
            local, scores = local[keep][:query.k], scores[keep][:query.k]
            pad = query.k - len(local)
            local = np.pad(local, (0, pad), constant_values=MISSING_ID)[None, :]
            scores = np.pad(scores, (0, pad), constant_values=-np.inf)[None, :].astype(np.float32)
            out.append(self._hits(space, scores, local, query.with_vectors))
        return out

    def _hits(self, space: VectorSpace, scores: npt.NDArray[np.float32], local: npt.NDArray[np.int64],
              with_vectors: bool) -> ShardHits:
        """Local rows -> global ids (and vectors); padding stays MISSING_ID."""
        hit = local != MISSING_ID
        ids = np.full(local.shape, MISSING_ID, dtype=np.int64)
        ids[hit] = self._global_ids[local[hit]]
        vectors = None
        if with_vectors:
            vectors = np.zeros(local.shape + (space.width,), dtype=np.float32)
            vectors[hit] = space.rows(local[hit])
        return ShardHits(scores.astype(np.float32), ids, vectors)

    def answers_inline(self, space: str | None = None) -> bool:
        """Vectors lookups, and searches of small exact spaces or with no executor, run in place."""
        return space is None or self._executor is None or self._inline.get(space, False)

    async def search(self, queries: npt.NDArray[np.float32], query: ShardQuery) -> ShardHits:
        if self.answers_inline(query.space):
            return self.search_sync(queries, query)
        excluded = self._batchable(queries, query)
        if excluded is not None:
            return await self._batchers[query.space].submit((queries, query, excluded))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.search_sync, queries, query)

    def vectors_sync(self, global_ids: npt.NDArray[np.int64], kind: str = "item") -> npt.NDArray[np.float32]:
        rows = self._local_rows(global_ids)
        if len(rows) != len(global_ids):
            raise KeyError(f"shard {self._shard} does not hold all of the requested items")
        if kind == "query":
            return np.asarray(self._query_vectors[rows], dtype=np.float32)
        return self._spaces[kind].rows(rows)

    async def vectors(self, global_ids: npt.NDArray[np.int64], kind: str = "item") -> npt.NDArray[np.float32]:
        # A memory-mapped row lookup: too cheap to be worth a thread hop.
        return self.vectors_sync(global_ids, kind)


def _cheap_to_search(space: VectorSpace, factory: str) -> bool:
    """Whether one query over this space costs less than a thread-pool hand-over."""
    return factory == "Flat" and space.vectors.shape[0] * space.vectors.shape[1] <= INLINE_SEARCH_MAX_FLOATS
