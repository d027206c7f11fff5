"""Requests and answers of the recommender core, free of protobuf and gRPC.

The servicer converts messages to these, the core validates them (raising
``InvalidInputError`` with the proto field name in the message) and answers with these.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from tastebud.errors import InvalidInputError
from tastebud.index.filters import ItemFilter

MAX_K = 1000


@dataclass(frozen=True, slots=True)
class RecommendQuery:
    user_id: str
    k: int
    history: tuple[str, ...] = ()
    item_filter: ItemFilter | None = None
    include_seen: bool = False
    restrict_to: tuple[str, ...] = ()
    diversity: float = 0.0
    taste: str = ""
    exclude_items: tuple[str, ...] = ()
    exclude_shown_within_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class SimilarQuery:
    item_id: str
    k: int
    item_filter: ItemFilter | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    k: int
    item_filter: ItemFilter | None = None


@dataclass(frozen=True, slots=True)
class NewInteraction:
    """An event as a caller sends it; timestamp 0 means now, weight 0 means 1.0."""

    user_id: str
    item_id: str
    timestamp: float = 0.0
    event: str = ""
    weight: float = 0.0


@dataclass(frozen=True, slots=True)
class Recommendation:
    item_id: str
    score: float
    title: str
    reason: str
    because_item_id: str = ""
    year: int = 0
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class RecommendResult:
    items: list[Recommendation]
    index_version: str
    degraded: bool = False
    missing_shards: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IndexSummary:
    version: str
    items: int
    users: int
    shards: int
    model: str
    dimension: int
    created_at: str
    index_type: str
    filter_attributes: tuple[str, ...] = field(default_factory=tuple)
    newest_year: int = 0


@dataclass(frozen=True, slots=True)
class UserProfile:
    user_id: str
    known: bool
    subscribed: bool
    history_length: int
    history: tuple[tuple[str, str, float], ...] = ()  # (item id, title, timestamp), newest first


@dataclass(frozen=True, slots=True)
class Deadline:
    """When the caller stops waiting (monotonic clock), or None for no deadline."""

    expires_at: float | None = None

    @staticmethod
    def after(seconds: float | None) -> "Deadline":
        return Deadline(None if seconds is None else time.monotonic() + seconds)

    def remaining(self) -> float | None:
        return None if self.expires_at is None else self.expires_at - time.monotonic()


def check_k(k: int, field_name: str = "k") -> None:
    if not 1 <= k <= MAX_K:
        raise InvalidInputError(f"{field_name} must be within 1..{MAX_K}, got {k}")


def check_diversity(value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InvalidInputError(f"diversity must be within 0..1, got {value}")
