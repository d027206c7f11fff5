"""String id columns -> integer codes that keep the strings' order, and the log's canonical order.

Sorting tens of millions of numpy strings is slow (about 30 s for 25M on a small machine), so
ids become integers and the heavy work (de-duplication, membership) runs on those.
``factorize`` packs each id's code points big-endian into ``uint64`` words whose integer order
is the string order (one word for ids of up to 8 code points below 256: every MovieLens id),
so it sorts integers, never strings. Code-point order is Python's ``str`` order, which is what
``score.py`` sorts by.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError
from tastebud.ingest.model import InteractionLog


def factorize(values: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.str_]]:
    """``(codes, uniques)``: the distinct strings in code-point order and ``uniques[codes] == values``.

    Codes keep the order: ``codes[a] < codes[b]`` exactly when ``values[a] < values[b]``.
    """
    strings = np.ascontiguousarray(np.asarray(values, dtype=np.str_).ravel())
    n = len(strings)
    if n == 0:
        return np.zeros(0, dtype=np.int64), strings
    words = _packed(strings)
    if len(words) == 1:
        distinct, codes = np.unique(words[0], return_inverse=True)
        codes = codes.astype(np.int64).ravel()
        n_distinct = len(distinct)
    else:  # lexicographic over the words, most significant first
        order = np.lexsort(words[::-1])
        new = np.zeros(n, dtype=bool)
        new[0] = True
        for word in words:
            ranked = word[order]
            new[1:] |= ranked[1:] != ranked[:-1]
        codes = np.empty(n, dtype=np.int64)
        codes[order] = np.cumsum(new) - 1
        n_distinct = int(np.count_nonzero(new))
    representative = np.empty(n_distinct, dtype=np.int64)
    representative[codes] = np.arange(n, dtype=np.int64)
    return codes, strings[representative]


def _packed(strings: npt.NDArray[np.str_]) -> list[npt.NDArray[np.uint64]]:
    """The strings as uint64 words, most significant first, whose lexicographic order is theirs.

    Code points take 8, 16 or 21 bits, whichever the largest needs; numpy pads short strings
    with code point 0, which sorts before every other, as a prefix sorts before its extensions.
    """
    n, width = len(strings), strings.dtype.itemsize // 4
    points = strings.view(np.uint32).reshape(n, width)
    used = width
    while used > 1 and not points[:, used - 1].any():  # the dtype may be wider than any id
        used -= 1
    top = int(points[:, :used].max()) if width else 0
    bits = 8 if top < 1 << 8 else 16 if top < 1 << 16 else 21
    per_word = 64 // bits
    words = []
    for start in range(0, max(1, used), per_word):
        chunk = points[:, start : min(used, start + per_word)]
        if bits == 8:  # bytes straight into a big-endian word: one pass
            raw = np.zeros((n, 8), dtype=np.uint8)
            raw[:, : chunk.shape[1]] = chunk
            words.append(raw.view(">u8").ravel().astype(np.uint64))
            continue
        word = np.zeros(n, dtype=np.uint64)
        for j in range(per_word):
            word <<= np.uint64(bits)
            if j < chunk.shape[1]:
                word |= chunk[:, j].astype(np.uint64)
        words.append(word)
    return words


def check_timestamps(timestamps: npt.NDArray[np.float64]) -> None:
    """Timestamps must be finite numbers: NaN has no place in a (timestamp, item) order."""
    bad = ~np.isfinite(timestamps)
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidInputError(
            f"interaction {row} has timestamp {timestamps[row]!r}; timestamps must be finite"
        )


def canonical(log: InteractionLog) -> tuple[InteractionLog, npt.NDArray[np.int64]]:
    """``log`` in (user, timestamp, item) order, with each row's user code (in user id order).

    ``InteractionLog`` promises that order, so the usual cost is a linear check on the
    columns as they are (item ids are compared only where user and timestamp tie); a log out
    of order is sorted.
    """
    users, times, items = log.user_ids, log.timestamps, log.item_ids
    check_timestamps(times)
    if len(log) < 2:
        return log, np.zeros(len(log), dtype=np.int64)
    next_user = users[1:] > users[:-1]
    same_user = ~next_user & (users[1:] == users[:-1])
    dt = np.diff(times)
    tied = same_user & (dt == 0)
    in_order = next_user | (same_user & (dt > 0)) | tied
    tied_at = np.flatnonzero(tied)
    if in_order.all() and np.all(items[tied_at + 1] >= items[tied_at]):
        return log, np.concatenate(([0], np.cumsum(next_user))).astype(np.int64)
    user_codes, _ = factorize(users)
    order = np.lexsort((factorize(items)[0], times, user_codes))
    return take_rows(log, order), user_codes[order]


def take_rows(log: InteractionLog, rows: npt.NDArray[np.int64] | npt.NDArray[np.bool_]) -> InteractionLog:
    """The log's rows ``rows`` (indices or a mask), every column, in the given order."""
    if rows.dtype == np.bool_:
        rows = np.flatnonzero(rows)  # once, not once per column
    return InteractionLog(
        user_ids=log.user_ids[rows],
        item_ids=log.item_ids[rows],
        timestamps=log.timestamps[rows],
        weights=log.weights[rows],
        events=log.events[rows],
        ratings=log.ratings[rows],
    )
