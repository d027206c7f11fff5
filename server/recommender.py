"""The recommender core: validated domain queries in, ranked items with reasons out.

It owns no transport. For each call: validate -> user (or item, or text) vector -> fan-out to
the shards with filters and exclusions -> exact merge -> re-rank within the remaining
deadline -> reasons. Every collaborator (index, encoder, histories, re-ranker, thread pool)
comes in through the constructor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import numpy.typing as npt

from tastebud.embed.encoder import Encoder
from tastebud.errors import InvalidInputError, PreconditionError, UnavailableError
from tastebud.index.filters import ItemFilter, ItemTable
from tastebud.index.histories import History
from tastebud.index.items import ItemStore
from tastebud.index.load import LoadedIndex
from tastebud.index.shards import ShardClient, ShardQuery
from tastebud.ingest.interaction_store import StoredInteraction
from tastebud.server.features import UserContext, candidate_features
from tastebud.server.domain import (Deadline, IndexSummary, NewInteraction, Recommendation, RecommendQuery,
                                    RecommendResult, SearchQuery, SimilarQuery, UserProfile, check_diversity,
                                    check_k)
from tastebud.server.live_history import LiveHistories
from tastebud.server.candidates import Candidates
from tastebud.server.rerank import Reranker, RerankRequest
from tastebud.server.retrieval import Fetched, Retrieved, fetch_vectors, retrieve

log = logging.getLogger(__name__)

# ranked candidates -> per item, (reason, because_item_id)
ReasonFn = Callable[[Candidates], list[tuple[str, str]]]

MAX_INTERACTIONS_PER_CALL = 10_000
MAX_HISTORY_LIMIT = 1000
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 1000, 10_000
MAX_USER_ID_LENGTH = 256
TITLE_MATCH_BONUS = 1.0


@dataclass(frozen=True, slots=True)
class RecommenderConfig:
    """Serving knobs. Candidates fetched = k * overfetch, and at least min_candidates when a learned
    ranker re-orders them (it needs a pool to choose from; rule re-ranking does not), capped by
    catalog size."""

    overfetch: int = 3
    min_candidates: int = 100  # what the learned ranker is trained on (RankerConfig.candidates)
    rerank_reserve_seconds: float = 0.002
    ranker_reserve_seconds: float = 0.004


def first_occurrences(history: History) -> History:
    """Each item once, at its first occurrence: the histories the retrieval model was trained on."""
    _, first = np.unique(history.items, return_index=True)
    if len(first) == len(history):
        return history
    keep = np.sort(first)
    return History(history.items[keep], history.timestamps[keep], history.weights[keep])


def check_user_id(user_id: str, field_name: str = "user_id") -> None:
    if not user_id.strip():
        raise InvalidInputError(f"{field_name}: must not be empty")
    if len(user_id) > MAX_USER_ID_LENGTH or not user_id.isprintable():
        raise InvalidInputError(f"{field_name}: at most {MAX_USER_ID_LENGTH} printable characters")


def normalize_title(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.casefold()).strip()


class Recommender:
    def __init__(self, index: LoadedIndex, encoder: Encoder, histories: LiveHistories, reranker: Reranker,
                 executor: Executor | None = None, config: RecommenderConfig = RecommenderConfig(),
                 shards: tuple[ShardClient, ...] | None = None) -> None:
        self._index = index
        self._items = index.items
        self._tower = index.tower
        self._shards = shards if shards is not None else index.shards
        self._encoder = encoder
        self._histories = histories
        self._reranker = reranker
        self._executor = executor
        self._config = config
        self._table: ItemTable = index.table
        self._dimensions = {"item": int(index.manifest.retrieval["dimension"]),
                            "query": int(index.manifest.retrieval["dimension"]) - 1,
                            "text": index.manifest.model.dimension}
        self._titles: dict[str, list[int]] = {}
        for row, title in enumerate(index.items.titles):
            self._titles.setdefault(normalize_title(title), []).append(row)

    # -- helpers -------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return self._index.manifest.version

    @property
    def items(self) -> ItemStore:
        return self._items

    @property
    def index(self) -> LoadedIndex:
        return self._index

    def _rows(self, item_ids: tuple[str, ...] | list[str], field_name: str) -> npt.NDArray[np.int64]:
        rows = []
        for i, item_id in enumerate(item_ids):
            row = self._items.row_of(item_id)
            if row is None:
                raise InvalidInputError(f"{field_name}[{i}]: unknown item id {item_id!r}")
            rows.append(row)
        return np.array(rows, dtype=np.int64)

    def _check_filter(self, item_filter: ItemFilter | None) -> ItemFilter | None:
        if item_filter is None or item_filter.is_empty():
            return None
        self._table.check(item_filter)
        return item_filter

    async def _vectors(self, rows: npt.NDArray[np.int64], kind: str = "item", deadline: Deadline = Deadline()
                       ) -> Fetched:
        return await fetch_vectors(self._shards, self._items.shard, rows, self._dimensions[kind], kind,
                                   deadline.remaining())

    async def _vectors_or_fail(self, rows: npt.NDArray[np.int64], kind: str, deadline: Deadline = Deadline()
                               ) -> npt.NDArray[np.float32]:
        """Vectors the answer cannot do without: a shard that fails makes the call UNAVAILABLE."""
        fetched = await self._vectors(rows, kind, deadline)
        if fetched.missing_shards:
            raise UnavailableError(f"shards {list(fetched.missing_shards)} did not answer; retry shortly")
        return fetched.vectors

    async def _encode_query(self, text: str) -> npt.NDArray[np.float32]:
        loop = asyncio.get_running_loop()
        vectors = await loop.run_in_executor(self._executor, self._encoder.encode_queries, [text])
        return vectors[0]

    def _n_candidates(self, k: int, for_ranker: bool) -> int:
        pool = self._config.min_candidates if for_ranker else 0
        return min(len(self._items), max(k * self._config.overfetch, pool, k))

    async def _retrieve(self, vector: npt.NDArray[np.float32], k: int, item_filter: ItemFilter | None,
                        exclude: npt.NDArray[np.int64], restrict: npt.NDArray[np.int64] | None,
                        deadline: Deadline, space: str = "item", for_ranker: bool = False) -> Retrieved:
        """The shards' merged top candidates: the learned ranker's pool when it will run
        (``for_ranker``), else k x overfetch (room for the filters and MMR)."""
        query = ShardQuery(self._n_candidates(k, for_ranker), item_filter, exclude, restrict, space=space)
        retrieved = await retrieve(self._shards, vector, query, deadline.remaining())
        if self._shards and len(retrieved.missing_shards) == len(self._shards):
            raise UnavailableError(f"no shard answered in time (shards {list(retrieved.missing_shards)}); "
                                   "retry shortly")
        return retrieved

    def _finish(self, retrieved: Retrieved, request: RerankRequest, deadline: Deadline,
                reasons: ReasonFn, note: str | None = None, also_missing: tuple[int, ...] = ()) -> RecommendResult:
        notes: list[str] = [note] if note else []
        remaining = deadline.remaining()
        if remaining is not None and remaining < self._config.rerank_reserve_seconds:
            request = dataclasses.replace(request, diversity=0.0)
            notes.append("re-ranking skipped to meet the deadline: retrieval order")
        ranked = self._reranker.rerank(retrieved.candidates, request)
        missing = tuple(sorted(set(retrieved.missing_shards) | set(also_missing)))
        if missing:
            notes.append(f"shards {list(missing)} did not answer in time")
        items = [
            Recommendation(self._items.item_ids[row], float(score), self._items.titles[row], reason, because,
                           year=max(0, int(self._items.years[row])), attributes=self._attributes(row))
            for row, score, (reason, because) in zip(ranked.ids.tolist(), ranked.scores.tolist(), reasons(ranked))
        ]
        return RecommendResult(items, self.version, degraded=bool(notes), missing_shards=missing,
                               notes=tuple(notes))

    def _attributes(self, row: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple((name, tuple(values[row])) for name, values in sorted(self._items.attributes.items())
                     if values[row])

    def _allowed(self, item_filter: ItemFilter | None) -> npt.NDArray[np.bool_] | None:
        return None if item_filter is None else self._table.mask(item_filter)

    @staticmethod
    def _without_bias(retrieved: Retrieved) -> Retrieved:
        """Candidates of the item space carry [p_j, b_j]; re-ranking and reasons use p_j."""
        c = retrieved.candidates
        return Retrieved(Candidates(c.ids, c.scores, c.vectors[:, :-1]), retrieved.missing_shards)

    # -- RPCs ----------------------------------------------------------------------------

    def user_history(self, user_id: str, extra: npt.NDArray[np.int64]) -> History:
        """Stored history of ``user_id`` followed by the request's ``extra`` rows (as most recent)."""
        history = self._histories.get(user_id) if user_id else History.empty()
        if len(extra):
            latest = float(history.timestamps[-1]) if len(history) else 0.0
            now = max(time.time(), latest)
            history = History(np.concatenate([history.items, extra]),
                              np.concatenate([history.timestamps, np.full(len(extra), now)]),
                              np.concatenate([history.weights, np.ones(len(extra), np.float32)]))
        return history

    async def user_query(self, query: RecommendQuery) -> tuple[npt.NDArray[np.float32], History,
                                                                npt.NDArray[np.float32]]:
        """The ANN query [u, 1] of a request, the history it came from, and that history's
        query-side vectors (the last ``history_length`` of them)."""
        vector, history, recent_vectors, _ = await self._user_query(query)
        return vector, history, recent_vectors

    async def _user_query(self, query: RecommendQuery, deadline: Deadline = Deadline()
                          ) -> tuple[npt.NDArray[np.float32], History, npt.NDArray[np.float32], tuple[int, ...]]:
        """:meth:`user_query`, and the shards whose history items had to be left out because
        they did not answer (their items could not be returned either: the answer is degraded)."""
        extra = self._rows(query.history, "history")
        history = first_occurrences(self.user_history(query.user_id, extra))
        length = self._tower.history_length
        fetched = await self._vectors(history.items[-length:], "query", deadline)
        recent_vectors = fetched.vectors
        if fetched.missing_shards:
            keep = ~np.isin(self._items.shard[history.items], fetched.missing_shards)
            history = History(history.items[keep], history.timestamps[keep], history.weights[keep])
            recent_vectors = (await self._vectors(history.items[-length:], "query", deadline)).vectors
        taste = await self._encode_query(query.taste) if query.taste.strip() else None
        user = self._tower.user_vector(recent_vectors, history.weights[-length:], taste)
        return self._tower.query(user), history, recent_vectors, fetched.missing_shards

    def excluded(self, query: RecommendQuery, history: History) -> npt.NDArray[np.int64]:
        """Rows a request must never get: its history (unless include_seen), exclude_items, and
        what the user was shown within exclude_shown_within_seconds."""
        drop = self._rows(query.exclude_items, "exclude_items")
        if not query.include_seen:
            drop = np.concatenate([drop, history.items])
        if query.exclude_shown_within_seconds > 0 and query.user_id and self._histories.store is not None:
            shown = self._histories.store.shown_since(query.user_id, time.time() - query.exclude_shown_within_seconds)
            drop = np.concatenate([drop, self._items.rows_of(shown)[0]])
        return np.unique(drop)

    async def recommend(self, query: RecommendQuery, deadline: Deadline = Deadline()) -> RecommendResult:
        check_k(query.k)
        check_diversity(query.diversity)
        window = query.exclude_shown_within_seconds
        if not np.isfinite(window) or window < 0:
            raise InvalidInputError(f"exclude_shown_within_seconds: must be finite and >= 0, got {window}")
        item_filter = self._check_filter(query.item_filter)
        restrict = self._rows(query.restrict_to, "restrict_to") if query.restrict_to else None
        vector, history, recent_vectors, unheard = await self._user_query(query, deadline)
        drop = self.excluded(query, history)
        retrieved = await self._retrieve(vector, query.k, item_filter, drop, restrict, deadline,
                                         for_ranker=self._ranks(history))
        recent = history.items[-self._tower.history_length:]
        scores, note = await self._learned_scores(retrieved, history, vector, deadline)
        request = RerankRequest(query.k, drop, self._allowed(item_filter), query.diversity, ranker_scores=scores)
        return self._finish(self._without_bias(retrieved), request, deadline,
                            self._history_reasons(recent, recent_vectors, query.taste), note, unheard)

    def _ranks(self, history: History) -> bool:
        """Whether the learned ranker re-orders a request with this history.

        Not without a history (a free-text taste alone, or nothing: the popularity prior): the
        ranker learnt from users' lists built on their histories, and without one its history
        features carry nothing. On the demo data its effect on taste-only requests changed sign
        from one build to the next (README, "Learned re-ranking"); retrieval order is the
        model's own answer there."""
        return self._index.ranker is not None and len(history) > 0

    async def _learned_scores(self, retrieved: Retrieved, history: History, vector: npt.NDArray[np.float32],
                              deadline: Deadline) -> tuple[npt.NDArray[np.float32] | None, str | None]:
        """The learned ranker's scores of the candidates, or None (no ranker, no history, or no
        time left)."""
        ranker = self._index.ranker
        if ranker is None or not self._ranks(history) or len(retrieved.candidates) == 0:
            return None, None
        remaining = deadline.remaining()
        if remaining is not None and remaining < self._config.ranker_reserve_seconds:
            return None, "learned re-ranking skipped to meet the deadline: retrieval order"
        candidates = retrieved.candidates
        if not ranker.for_new_items and not (ranker.signals.popularity[candidates.ids[candidates.ids >= 0]] > 0).any():
            # Only new items (say, a new-releases shelf) and a ranker that did not beat retrieval
            # order on the build's pseudo-new items: their retrieval order stands.
            return None, None
        recent = history.items[-self._tower.history_length:]
        text_history, text_candidates = await asyncio.gather(self._vectors(recent, "text", deadline),
                                                             self._vectors(candidates.ids, "text", deadline))
        if text_history.missing_shards or text_candidates.missing_shards:
            return None, "learned re-ranking skipped: a shard did not return text vectors"
        text_history, text_candidates = text_history.vectors, text_candidates.vectors
        weights = self._tower.weights_for(len(recent)) * history.weights[-len(recent):]
        context = UserContext(recent, weights.astype(np.float32), text_history, vector[:-1])
        features = candidate_features(ranker.signals, context, candidates.ids, candidates.scores, candidates.vectors,
                                      text_candidates)
        return ranker.score(features), None

    def _history_reasons(self, rows: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32], taste: str
                         ) -> ReasonFn:
        """"because you watched X" with X the history item that adds most to the item's score."""
        def reasons(ranked: Candidates) -> list[tuple[str, str]]:
            if len(rows) and len(ranked):
                closest = rows[np.argmax(self._tower.contributions(vectors, ranked.vectors), axis=1)].tolist()
                return [(f"because you watched {self._items.titles[c]}", self._items.item_ids[c]) for c in closest]
            why = f"matches your taste: {taste.strip()}" if taste.strip() else "popular right now"
            return [(why, "")] * len(ranked)
        return reasons

    async def similar(self, query: SimilarQuery, deadline: Deadline = Deadline()) -> RecommendResult:
        """Items for someone who just watched this one: the item as a one-item history."""
        check_k(query.k)
        item_filter = self._check_filter(query.item_filter)
        row = self._items.row_of(query.item_id)
        if row is None:
            raise InvalidInputError(f"item_id: unknown item id {query.item_id!r}")
        drop = np.array([row], dtype=np.int64)
        user = self._tower.user_vector(await self._vectors_or_fail(drop, "query", deadline))
        retrieved = await self._retrieve(self._tower.query(user), query.k, item_filter, drop, None, deadline)
        request = RerankRequest(query.k, drop, self._allowed(item_filter))
        title, item_id = self._items.titles[row], query.item_id
        return self._finish(self._without_bias(retrieved), request, deadline,
                            lambda ranked: [(f"similar to {title}", item_id)] * len(ranked))

    async def search(self, query: SearchQuery, deadline: Deadline = Deadline()) -> RecommendResult:
        """Text search in the text space: cosine to the encoded query; an exact title ranks first."""
        check_k(query.k)
        item_filter = self._check_filter(query.item_filter)
        text = query.text.strip()
        if not text:
            raise InvalidInputError("text: must not be empty")
        vector = await self._encode_query(text)
        retrieved = await self._retrieve(vector, query.k, item_filter, np.zeros(0, np.int64), None, deadline,
                                         space="text")
        title_rows = np.array(self._titles.get(normalize_title(text), []), dtype=np.int64)
        candidates = retrieved.candidates
        if len(title_rows):
            # An exact title match ranks first: people type titles into search boxes.
            missing = title_rows[~np.isin(title_rows, candidates.ids)]
            vectors = await self._vectors_or_fail(missing, "text", deadline)
            candidates = Candidates(np.concatenate([candidates.ids, missing]),
                                    np.concatenate([candidates.scores, vectors @ vector]).astype(np.float32),
                                    np.concatenate([candidates.vectors, vectors]))
            bonus = np.where(np.isin(candidates.ids, title_rows), TITLE_MATCH_BONUS, 0.0).astype(np.float32)
            candidates = Candidates(candidates.ids, candidates.scores + bonus, candidates.vectors)
        request = RerankRequest(query.k, np.zeros(0, np.int64), self._allowed(item_filter))
        title_set = set(title_rows.tolist())

        def reasons(ranked: Candidates) -> list[tuple[str, str]]:
            return [("title matches your search" if i in title_set else f"matches your search: {text}", "")
                    for i in ranked.ids.tolist()]
        return self._finish(Retrieved(candidates, retrieved.missing_shards), request, deadline, reasons)

    def record(self, interactions: list[NewInteraction]) -> int:
        """Validate every event, then store them all durably (all or nothing). Blocking."""
        if not 1 <= len(interactions) <= MAX_INTERACTIONS_PER_CALL:
            raise InvalidInputError(f"interactions: must hold 1..{MAX_INTERACTIONS_PER_CALL} events, "
                                    f"got {len(interactions)}")
        now = time.time()
        rows = []
        for i, it in enumerate(interactions):
            if not it.user_id.strip():
                raise InvalidInputError(f"interactions[{i}].user_id: must not be empty")
            if self._items.row_of(it.item_id) is None:
                raise InvalidInputError(f"interactions[{i}].item_id: unknown item id {it.item_id!r}")
            if not np.isfinite(it.weight) or it.weight < 0:
                raise InvalidInputError(f"interactions[{i}].weight: must be finite and >= 0, got {it.weight}")
            if not np.isfinite(it.timestamp) or it.timestamp < 0:
                raise InvalidInputError(f"interactions[{i}].timestamp: must be finite and >= 0, got {it.timestamp}")
            rows.append(StoredInteraction(it.user_id, it.item_id, it.timestamp or now, it.event,
                                          it.weight if it.weight > 0 else 1.0))
        return self._histories.record(rows)

    def info(self) -> IndexSummary:
        m = self._index.manifest
        years = self._items.years[self._items.years > 0]
        return IndexSummary(m.version, m.n_items, m.n_users, len(m.shards), m.model.name, m.model.dimension,
                            m.created_at, m.factory, m.filter_attributes, int(years.max()) if len(years) else 0)

    @property
    def histories(self) -> LiveHistories:
        return self._histories

    def user(self, user_id: str, history_limit: int = 0) -> UserProfile:
        """What a surface shows of a user: new or known, subscribed, the latest history items."""
        check_user_id(user_id)
        if not 0 <= history_limit <= MAX_HISTORY_LIMIT:
            raise InvalidInputError(f"history_limit: must be within 0..{MAX_HISTORY_LIMIT}, got {history_limit}")
        history = self._histories.get(user_id)
        store = self._histories.store
        choice = store.subscription(user_id) if store is not None else None
        latest = [(self._items.item_ids[row], self._items.titles[row], float(ts))
                  for row, ts in zip(history.items[::-1][:history_limit].tolist(),
                                     history.timestamps[::-1][:history_limit].tolist())]
        return UserProfile(user_id, len(history) > 0, choice is not False, len(history), tuple(latest))

    def list_users(self, page_size: int, page_token: str) -> tuple[list[str], str]:
        """A page of user ids and the token of the next page ('' after the last)."""
        size = page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidInputError(f"page_size: must be within 1..{MAX_PAGE_SIZE}, got {page_size}")
        if page_token and not page_token.isdigit():
            raise InvalidInputError(f"page_token: not a token this server gave out: {page_token!r}")
        start = int(page_token or 0)
        users = self._histories.user_ids()
        page = users[start:start + size]
        return page, str(start + size) if start + size < len(users) else ""

    def set_subscription(self, user_id: str, subscribed: bool) -> bool:
        """Record the user's email choice durably. Blocking."""
        check_user_id(user_id)
        store = self._histories.store
        if store is None:
            raise PreconditionError("this server has no interaction store to keep subscriptions in")
        store.set_subscription(user_id, subscribed)
        return subscribed

