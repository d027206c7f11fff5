"""The in-memory shape of a data set after it is read and cleaned.

Columnar on purpose: a catalog of a million items or a log of tens of millions of events stays
a handful of arrays, not millions of small objects. Every reader in ``tastebud.ingest`` returns
these; everything downstream (embed, index, eval) consumes only these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Catalog:
    """Items, in a fixed order; position ``i`` in every field describes the same item.

    ``attributes`` maps a filterable attribute name (``"genres"``, ``"language"``...) to one tuple
    of string values per item (multi-valued fields have several, missing ones none).
    ``years`` is the release year or ``None``; it is kept apart because filters take ranges of it.
    ``texts`` is each item's text rendered from the configured template: what gets embedded.
    """

    item_ids: list[str]
    titles: list[str]
    texts: list[str]
    years: list[int | None]
    attributes: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.item_ids)


@dataclass(frozen=True, slots=True)
class InteractionLog:
    """User-item events, one row per position, sorted by (user_id, timestamp, item_id).

    ``timestamps`` are seconds since the Unix epoch (float64). ``weights`` default to 1.0;
    ``events`` is the free-form event kind ("view", "play", "rating"...), "" when absent;
    ``ratings`` is NaN where the source had none.
    """

    user_ids: npt.NDArray[np.str_]
    item_ids: npt.NDArray[np.str_]
    timestamps: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float32]
    events: npt.NDArray[np.str_]
    ratings: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What cleaning did: rows read, and rows skipped per reason (only when skipping is allowed)."""

    items_read: int
    interactions_read: int
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{self.items_read} items", f"{self.interactions_read} interactions"]
        parts += [f"skipped {n} ({reason})" for reason, n in sorted(self.skipped.items()) if n]
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A cleaned catalog with its interaction log; every logged item is in the catalog."""

    catalog: Catalog
    interactions: InteractionLog
    report: LoadReport


def sorted_interaction_log(
    user_ids: npt.ArrayLike,
    item_ids: npt.ArrayLike,
    timestamps: npt.ArrayLike,
    weights: npt.ArrayLike,
    events: npt.ArrayLike,
    ratings: npt.ArrayLike,
) -> InteractionLog:
    """Build an ``InteractionLog`` from parallel columns, in the contract's dtypes and order.

    Every reader ends here so that the (user_id, timestamp, item_id) order and the dtypes are
    decided once. Ids sort as strings ("10" before "2"): the order only has to be stable.
    """
    users = np.asarray(user_ids, dtype=np.str_)
    items = np.asarray(item_ids, dtype=np.str_)
    times = np.asarray(timestamps, dtype=np.float64)
    order = np.lexsort((items, times, users))
    return InteractionLog(
        user_ids=users[order],
        item_ids=items[order],
        timestamps=times[order],
        weights=np.asarray(weights, dtype=np.float32)[order],
        events=np.asarray(events, dtype=np.str_)[order],
        ratings=np.asarray(ratings, dtype=np.float32)[order],
    )
