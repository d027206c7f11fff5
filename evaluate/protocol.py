"""The splits of the offline evaluation protocol (shared/eval/PROTOCOL.md), exactly as the
reference ``score.py`` makes them, on in-memory data sets.

* ``split_main``: duplicate (user, item) pairs keep the earliest timestamp; each user's
  interactions are sorted by (timestamp, item id as a string); users with at least 5 keep the
  last ``max(1, round(0.2 * n))`` as their test set (Python's ``round``, so halves go to even).
  Users with fewer than 5 are train-only.
* ``short_history``: each test user's last 3 train items, the only history a model may use in
  the "new users" view.
* ``split_cold``: 10% of the items *of the interactions* (not the catalog) picked by
  ``numpy.random.default_rng(0).permutation`` over their sorted ids; every interaction with one
  of them leaves the train set; each user's test interactions with them are the test set.

Pure functions: no I/O. The work is vectorised on integer codes (``codes.factorize``), so a
MovieLens 25M log splits in seconds rather than minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError
from tastebud.ingest.model import Dataset, InteractionLog

from .codes import canonical, factorize, take_rows

MIN_INTERACTIONS = 5  # users with fewer are train-only
TEST_FRACTION = 0.2
COLD_FRACTION = 0.1
COLD_SEED = 0
SHORT_HISTORY = 3


@dataclass(frozen=True, slots=True)
class Split:
    """The main temporal split.

    ``train`` is the input's catalog (unchanged) with the train interactions only, every
    column of the kept rows, sorted by (user, timestamp, item); its ``report`` is the input's.
    ``test`` maps each test user (in user id order) to their test items in time order;
    ``test_log`` holds the same rows with all their columns.
    """

    train: Dataset
    test: dict[str, list[str]]
    test_log: InteractionLog


@dataclass(frozen=True, slots=True)
class ColdSplit:
    """The cold-items view: ``items`` (sorted ids) never appear in ``train``.

    ``train`` is the main split's train set minus every interaction with a cold item (catalog
    unchanged: the cold items' metadata stays). ``test`` maps each user whose main test set
    holds at least one cold item to those items, in time order.
    """

    items: list[str]
    train: Dataset
    test: dict[str, list[str]]


def n_test_of(n: int) -> int:
    """How many of a user's ``n`` interactions are test: score.py's rule, Python's ``round``."""
    return max(1, round(TEST_FRACTION * n)) if n >= MIN_INTERACTIONS else 0


def split_main(dataset: Dataset) -> Split:
    """The temporal per-user split of ``dataset``'s interactions (see the module docstring)."""
    log, user_codes = _deduplicated(dataset.interactions)
    counts = np.bincount(user_codes).astype(np.int64) if len(log) else np.zeros(0, np.int64)
    n_test = _n_test(counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    position = np.arange(len(log), dtype=np.int64) - starts[user_codes]
    is_test = position >= (counts - n_test)[user_codes]
    test_log = take_rows(log, is_test)
    test = _grouped(test_log.user_ids, test_log.item_ids, n_test[n_test > 0])
    train = Dataset(dataset.catalog, take_rows(log, ~is_test), dataset.report)
    return Split(train=train, test=test, test_log=test_log)


def short_history(split: Split, n: int = SHORT_HISTORY) -> dict[str, list[str]]:
    """Each test user's last ``n`` train items, oldest first (fewer if they have fewer)."""
    if n < 0:
        raise InvalidInputError(f"short history length must be >= 0, got {n}")
    log, user_codes = canonical(split.train.interactions)
    ends = np.cumsum(np.bincount(user_codes)).tolist() if len(log) else []
    starts = [0, *ends[:-1]]
    run = {user: i for i, user in enumerate(log.user_ids[starts].tolist())} if ends else {}
    out: dict[str, list[str]] = {}
    for user in split.test:
        i = run.get(user)
        if i is None:
            out[user] = []
        else:
            out[user] = log.item_ids[max(starts[i], ends[i] - n) : ends[i]].tolist()
    return out


def cold_items_of(item_ids: npt.ArrayLike) -> list[str]:
    """The cold items among the distinct ``item_ids``: score.py's ``cold_items``, sorted."""
    items = sorted(set(np.asarray(item_ids, dtype=np.str_).tolist()))
    order = np.random.default_rng(COLD_SEED).permutation(len(items))
    return sorted(items[j] for j in order[: int(COLD_FRACTION * len(items))])


def split_cold(source: Dataset | Split) -> ColdSplit:
    """The cold-items view of a data set, or of its main split (which saves splitting again)."""
    main = source if isinstance(source, Split) else split_main(source)
    train_log = main.train.interactions
    train_codes, train_items = factorize(train_log.item_ids)
    test_codes, test_items = factorize(main.test_log.item_ids)
    cold = cold_items_of(np.union1d(train_items, test_items))
    drop = np.isin(train_items, cold)[train_codes]
    test_cold = np.isin(test_items, cold)[test_codes]
    test: dict[str, list[str]] = {}
    for user, item in zip(
        main.test_log.user_ids[test_cold].tolist(), main.test_log.item_ids[test_cold].tolist()
    ):
        test.setdefault(user, []).append(item)
    train = Dataset(main.train.catalog, take_rows(train_log, ~drop), main.train.report)
    return ColdSplit(items=cold, train=train, test=test)


def _deduplicated(log: InteractionLog) -> tuple[InteractionLog, npt.NDArray[np.int64]]:
    """The log sorted by (user, timestamp, item) with one row per (user, item): the earliest.

    Returns it with each row's user code (0..users-1, in user id order).
    """
    log, user_codes = canonical(log)
    item_codes, items = factorize(log.item_ids)
    pair = user_codes * max(1, len(items)) + item_codes
    _, first = np.unique(pair, return_index=True)  # stable: the first row in time order
    if len(first) == len(log):
        return log, user_codes
    keep = np.zeros(len(log), dtype=bool)
    keep[first] = True
    return take_rows(log, keep), user_codes[keep]


def _n_test(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Per user the test size, the rule evaluated in Python once per distinct count."""
    distinct, which = np.unique(counts, return_inverse=True)
    rule = np.array([n_test_of(int(c)) for c in distinct], dtype=np.int64)
    return rule[which.ravel()]


def _grouped(
    users: npt.NDArray[np.str_], items: npt.NDArray[np.str_], sizes: npt.NDArray[np.int64]
) -> dict[str, list[str]]:
    """Consecutive runs of ``sizes`` rows -> {user: [items]} (rows grouped by user already)."""
    if len(sizes) == 0:
        return {}
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    all_items = items.tolist()
    run_users = users[starts].tolist()
    return {
        user: all_items[int(s) : int(s) + int(n)]
        for user, s, n in zip(run_users, starts, sizes, strict=True)
    }
