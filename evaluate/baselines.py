"""Context baselines for offline evaluation: most popular, random, item-kNN and EASE.

Each takes a train ``Dataset`` and the users to serve and returns ``{user: [item ids]}``,
best first, at most ``k`` long. The common keywords:

* ``histories``: ``{user: [item ids, oldest first]}`` to score from instead of the user's train
  items (the short-history view); the model is still fitted on all of ``train``.
* ``candidates``: the only items a list may hold (the cold-items view ranks just the cold items).
* ``exclude_seen``: leave out the user's train items and their given history (the protocol
  forbids recommending train items; test items are never among them).

Ties go to the more popular item, then to a fixed pseudo-random order (``user_items``), so a
user a model knows nothing about gets the most popular allowed items, and in the cold-items
view (where no candidate has train interactions) every model without content signal ranks
like one fixed random permutation. Numpy only: item-kNN and EASE build dense item x item
matrices over the items with train interactions and refuse more than ``max_items`` of them
(``TooManyItemsError``) instead of exhausting memory: keep them for catalogs up to ~20k items.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError
from tastebud.ingest.model import Dataset
from tastebud.train.item_item import ease_weights

from .user_items import Rows, UserItems, dense, top_k

log = logging.getLogger(__name__)

MAX_ITEMS = 20_000
BLOCK_CELLS = 1 << 24  # float32 cells per dense block of users x items (64 MiB)

Histories = Mapping[str, Sequence[str]]
Recommendations = dict[str, list[str]]


class TooManyItemsError(InvalidInputError):
    """A dense item x item baseline was asked for more items than it allows."""


def most_popular(train: Dataset, users: Sequence[str], k: int = 10, *, histories: Histories | None = None,
                 candidates: Collection[str] | None = None, exclude_seen: bool = True) -> Recommendations:
    """The allowed items with most train users, minus each user's seen items."""
    users = _checked(users, k)
    data = UserItems.from_dataset(train)
    pool = np.flatnonzero(data.allowed(candidates))  # ascending index = popularity order
    blocked = np.zeros(data.n_items, dtype=bool)
    out: Recommendations = {}
    for user, seen in zip(users, _exclusions(data, users, histories, exclude_seen), strict=True):
        blocked[seen] = True
        head = pool[: k + len(seen)]
        out[user] = [data.item_ids[j] for j in head[~blocked[head]][:k].tolist()]
        blocked[seen] = False
    return out


def random_items(train: Dataset, users: Sequence[str], k: int = 10, *, seed: int = 0,
                 histories: Histories | None = None, candidates: Collection[str] | None = None,
                 exclude_seen: bool = True) -> Recommendations:
    """``k`` allowed unseen items per user drawn uniformly (``default_rng(seed)``, users in order)."""
    users = _checked(users, k)
    data = UserItems.from_dataset(train)
    pool = np.flatnonzero(data.allowed(candidates))
    rng = np.random.default_rng(seed)
    blocked = np.zeros(data.n_items, dtype=bool)
    out: Recommendations = {}
    for user, seen in zip(users, _exclusions(data, users, histories, exclude_seen), strict=True):
        blocked[seen] = True
        draw = pool[rng.choice(len(pool), size=min(len(pool), k + len(seen)), replace=False)]
        out[user] = [data.item_ids[j] for j in draw[~blocked[draw]][:k].tolist()]
        blocked[seen] = False
    return out


def item_knn(train: Dataset, users: Sequence[str], k: int = 10, *, neighbours: int = 50,
             half_life: float | None = None, histories: Histories | None = None,
             candidates: Collection[str] | None = None, exclude_seen: bool = True,
             max_items: int = MAX_ITEMS) -> Recommendations:
    """Item-item cosine kNN on the binary user-item matrix.

    sim(i, j) = co-occurrences / sqrt(users of i * users of j); each item keeps its
    ``neighbours`` most similar items; a user's score of j is the sum over history items i of
    w_i * sim(i, j). ``half_life`` (interactions) weighs the history by recency as
    ``embed/user_tower.py`` does (the last item 1, halving every ``half_life`` back); None: all 1.
    """
    if neighbours < 1:
        raise InvalidInputError(f"neighbours must be >= 1, got {neighbours}")
    if half_life is not None and not half_life > 0:
        raise InvalidInputError(f"half_life must be > 0 or None, got {half_life}")
    users = _checked(users, k)
    data = UserItems.from_dataset(train)
    similarity = _cosine(_cooccurrence(data, max_items, "item_knn"))
    _keep_top(similarity, neighbours)

    def score(rows: Rows) -> npt.NDArray[np.float32]:
        weights = None if half_life is None else [_recency(len(r), half_life) for r in rows]
        return dense(rows, len(similarity), weights) @ similarity

    return _rank(data, users, k, score, histories, candidates, exclude_seen)


def ease(train: Dataset, users: Sequence[str], k: int = 10, *, l2: float = 500.0,
         histories: Histories | None = None, candidates: Collection[str] | None = None,
         exclude_seen: bool = True, max_items: int = MAX_ITEMS) -> Recommendations:
    """EASE (Steck 2019): B = I - P / diag(P) with P = (X'X + l2 I)^-1, diag(B) = 0; score = x B.

    ``X`` is the binary user-item train matrix; float32 throughout (the ridge term keeps the
    system well conditioned), about 8 * items^2 bytes at the peak.
    """
    if not l2 > 0:
        raise InvalidInputError(f"l2 must be > 0, got {l2}")
    users = _checked(users, k)
    data = UserItems.from_dataset(train)
    weights = ease_weights(_cooccurrence(data, max_items, "ease"), l2)

    def score(rows: Rows) -> npt.NDArray[np.float32]:
        return dense(rows, len(weights)) @ weights

    return _rank(data, users, k, score, histories, candidates, exclude_seen)


def _checked(users: Sequence[str], k: int) -> list[str]:
    if k < 1:
        raise InvalidInputError(f"k must be >= 1, got {k}")
    return list(users)


def _exclusions(data: UserItems, users: list[str], histories: Histories | None, exclude_seen: bool
                ) -> Rows:
    """Per user the items a list may not hold: train items and any given history (may repeat)."""
    if not exclude_seen:
        return [np.zeros(0, dtype=np.int64) for _ in users]
    if histories is None:
        return [data.seen(user) for user in users]
    given = data.histories(users, histories)
    return [np.concatenate((data.seen(user), h)) for user, h in zip(users, given, strict=True)]


def _recency(n: int, half_life: float) -> npt.NDArray[np.float32]:
    return np.power(0.5, np.arange(n - 1, -1, -1, dtype=np.float64) / half_life).astype(np.float32)


def _cooccurrence(data: UserItems, max_items: int, name: str) -> npt.NDArray[np.float32]:
    """float32[a, a] = X'X over the ``a`` items with train interactions (counts, exact < 2^24)."""
    active = data.n_active
    if active > max_items:
        raise TooManyItemsError(
            f"{name} builds dense item x item matrices: the train set has {active} items with"
            f" interactions, more than max_items={max_items} (about {8 * active**2 / 2**30:.1f} GiB"
            " would be needed); use a smaller catalog or raise max_items"
        )
    counts = np.zeros((active, active), dtype=np.float32)
    n_users = len(data.indptr) - 1
    step = max(1, BLOCK_CELLS // max(1, active))
    for start in range(0, n_users, step):
        stop = min(n_users, start + step)
        block = dense([data.indices[data.indptr[u] : data.indptr[u + 1]] for u in range(start, stop)], active)
        counts += block.T @ block
    return counts


def _cosine(counts: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """In place: co-occurrence counts -> cosine similarity with a zero diagonal."""
    norms = np.sqrt(np.diag(counts)).astype(np.float32)
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    counts *= inverse[:, None]
    counts *= inverse[None, :]
    np.fill_diagonal(counts, 0.0)
    return counts


def _keep_top(similarity: npt.NDArray[np.float32], neighbours: int) -> None:
    """In place: each row keeps its ``neighbours`` largest entries (ties: the lower column)."""
    step = max(1, BLOCK_CELLS // max(1, similarity.shape[1]))
    for start in range(0, len(similarity), step):
        block = similarity[start : start + step]
        keep = np.zeros(block.shape, dtype=bool)
        for r, cols in enumerate(top_k(block, neighbours)):
            keep[r, cols] = True
        block[~keep] = 0.0


def _rank(data: UserItems, users: list[str], k: int,
          score: Callable[[Rows], npt.NDArray[np.float32]], histories: Histories | None,
          candidates: Collection[str] | None, exclude_seen: bool) -> Recommendations:
    """Score users in blocks over the active items (the rest score 0), mask, take the top k."""
    allowed = data.allowed(candidates)
    active = data.n_active
    rows = data.histories(users, histories)
    excluded = _exclusions(data, users, histories, exclude_seen)
    out: Recommendations = {}
    step = max(1, BLOCK_CELLS // max(1, data.n_items))
    for start in range(0, len(users), step):
        block_users, block_rows = users[start : start + step], rows[start : start + step]
        scores = np.zeros((len(block_users), data.n_items), dtype=np.float32)
        scores[:, :active] = score(block_rows)  # inactive items have no signal: they score 0
        scores[:, ~allowed] = -np.inf
        for r, blocked in enumerate(excluded[start : start + step]):
            scores[r, blocked] = -np.inf
        for user, cols in zip(block_users, top_k(scores, k), strict=True):
            out[user] = [data.item_ids[j] for j in cols.tolist()]
    log.debug("ranked %d users over %d items (%d active)", len(users), data.n_items, active)
    return out
