"""A train set as per-user item histories over one item order, and exact top-k over score rows.

The baselines share this: ``UserItems.from_dataset`` turns a train ``Dataset`` into CSR rows
(each user's distinct items, oldest first) over the catalog's items, and ``top_k`` ranks score
rows. Items are indexed by train popularity (distinct users, most first), so "the lower index
wins a tie" means "the more popular item wins": a user about whom a model knows nothing gets
the most popular items. Items of equal popularity are in a fixed pseudo-random order
(``default_rng(TIE_SEED)`` over catalog positions), not in catalog order: catalog order is
not neutral (MovieLens 100K numbers its popular films first, so ranking the cold items in id
order scored Recall@10 0.17 where random ranking scores 0.06).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError
from tastebud.ingest.model import Dataset

from .codes import canonical, factorize

Rows = list[npt.NDArray[np.int64]]
TIE_SEED = 0


@dataclass(frozen=True, slots=True)
class UserItems:
    """Binary user-item data. Item index ``j`` is ``item_ids[j]`` (order: see the module doc).

    ``popularity[j]`` is the number of train users of item ``j`` (non-increasing in ``j``), so
    items ``0..n_active-1`` are exactly those with train interactions. ``indptr``/``indices``
    are CSR rows for the users of ``user_row``.
    """

    item_ids: list[str]
    item_index: dict[str, int]
    popularity: npt.NDArray[np.int64]
    user_row: dict[str, int]
    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_active(self) -> int:
        return int(np.count_nonzero(self.popularity))

    @classmethod
    def from_dataset(cls, train: Dataset) -> UserItems:
        """Rows of ``train``'s interactions; repeated (user, item) pairs count once, at the first."""
        log, user_codes = canonical(train.interactions)
        catalog = train.catalog.item_ids
        item_codes, items = factorize(log.item_ids)
        position = {item: p for p, item in enumerate(catalog)}
        unknown = [item for item in items.tolist() if item not in position]
        if unknown:
            raise InvalidInputError(
                f"{len(unknown)} interaction item ids are not in the catalog, e.g. {unknown[0]!r}"
            )
        catalog_pos = np.array([position[i] for i in items.tolist()], dtype=np.int64)[item_codes]
        _, first = np.unique(user_codes * max(1, len(items)) + item_codes, return_index=True)
        first.sort()
        user_codes, catalog_pos = user_codes[first], catalog_pos[first]
        popularity = np.bincount(catalog_pos, minlength=len(catalog)).astype(np.int64)
        shuffled = np.random.default_rng(TIE_SEED).permutation(len(catalog))
        by_rank = np.lexsort((shuffled, -popularity))  # rank -> catalog position
        rank_of = np.empty(len(catalog), dtype=np.int64)
        rank_of[by_rank] = np.arange(len(catalog), dtype=np.int64)
        item_ids = [catalog[p] for p in by_rank.tolist()]
        indptr = np.concatenate(([0], np.cumsum(np.bincount(user_codes)))).astype(np.int64)
        users = log.user_ids[first[indptr[:-1]]] if len(first) else log.user_ids[:0]
        return cls(
            item_ids=item_ids,
            item_index={item: j for j, item in enumerate(item_ids)},
            popularity=popularity[by_rank],
            user_row={user: r for r, user in enumerate(users.tolist())},
            indptr=indptr,
            indices=rank_of[catalog_pos],
        )

    def seen(self, user: str) -> npt.NDArray[np.int64]:
        """The user's train items, oldest first (empty for a user without train interactions)."""
        row = self.user_row.get(user)
        if row is None:
            return np.zeros(0, dtype=np.int64)
        return self.indices[self.indptr[row] : self.indptr[row + 1]]

    def histories(self, users: Sequence[str], given: Mapping[str, Sequence[str]] | None) -> Rows:
        """Each user's history: their train items, or ``given[user]`` (item ids, oldest first)."""
        if given is None:
            return [self.seen(user) for user in users]
        return [self.lookup(given.get(user, ()), f"history of user {user!r}") for user in users]

    def lookup(self, items: Collection[str], what: str) -> npt.NDArray[np.int64]:
        """Indexes of catalog ``items``; ``InvalidInputError`` naming ``what`` for an unknown one."""
        out = np.empty(len(items), dtype=np.int64)
        for n, item in enumerate(items):
            j = self.item_index.get(item)
            if j is None:
                raise InvalidInputError(f"{what}: item {item!r} is not in the catalog")
            out[n] = j
        return out

    def allowed(self, candidates: Collection[str] | None) -> npt.NDArray[np.bool_]:
        """bool[n_items]: the items a list may hold (all of them when ``candidates`` is None)."""
        mask = np.zeros(self.n_items, dtype=bool)
        if candidates is None:
            mask[:] = True
        else:
            mask[self.lookup(list(candidates), "candidates")] = True
        return mask


def dense(rows: Rows, width: int, weights: Rows | None = None) -> npt.NDArray[np.float32]:
    """float32[len(rows), width]: row r holds 1 (or ``weights[r]``) at columns ``rows[r]``.

    Columns >= ``width`` are dropped (the baselines' matrices cover only active items).
    """
    out = np.zeros((len(rows), width), dtype=np.float32)
    if rows:
        which = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
        cols = np.concatenate(rows).astype(np.int64)
        values = np.ones(len(cols), np.float32) if weights is None else np.concatenate(weights)
        keep = cols < width
        out[which[keep], cols[keep]] = values[keep]
    return out


def top_k(scores: npt.NDArray[np.float32], k: int) -> Rows:
    """Per row, the columns of the ``k`` highest scores by (score desc, column asc).

    ``-inf`` marks a column that may not be returned, so a row yields ``min(k, finite)``
    columns. Exact, ties included, in O(columns) per row (``np.partition``, no full sort).
    """
    n_rows, width = scores.shape
    kk = min(k, width)
    if kk <= 0 or n_rows == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(n_rows)]
    kth = -np.partition(-scores, kk - 1, axis=1)[:, kk - 1 : kk]
    above = scores > kth
    tied = (scores == kth) & (scores > -np.inf)
    room = kk - above.sum(axis=1, keepdims=True)
    take = above | (tied & (np.cumsum(tied, axis=1) <= room))
    rows, cols = np.nonzero(take)
    order = np.lexsort((cols, -scores[rows, cols], rows))
    return np.split(cols[order].astype(np.int64), np.cumsum(take.sum(axis=1))[:-1])
