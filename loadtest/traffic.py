"""Concrete requests for a load test: the mix applied to the served index's real ids.

Requests are made before the run (seeded, so two runs send the same traffic) and cycled, so
building protobuf messages costs the generator nothing while it is measuring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grpc_health.v1 import health_pb2

from tastebud.errors import InvalidInputError
from tastebud.loadtest.mix import TrafficMix
from tastebud.v1 import recommender_pb2 as pb


@dataclass(frozen=True, slots=True)
class Population:
    """What requests are made of: the index's user ids, item ids, titles and attribute values."""

    user_ids: list[str]
    item_ids: list[str]
    titles: list[str]
    attribute_values: dict[str, list[str]]
    years: tuple[int, int] | None

    @classmethod
    def from_index(cls, index: Path) -> "Population":
        """Read from an index root (its ``current`` version) or a version folder."""
        from tastebud.index.histories import UserHistories
        from tastebud.index.items import ItemStore
        from tastebud.index.filters import NO_YEAR
        from tastebud.index.publish import resolve_version_dir

        version = resolve_version_dir(Path(index))
        items = ItemStore.read(version / "items.parquet")
        users = UserHistories.read(version / "users.parquet").user_ids
        values = {name: sorted({v for row in rows for v in row}) for name, rows in items.attributes.items()}
        known = items.years[items.years != NO_YEAR]
        years = (int(known.min()), int(known.max())) if len(known) else None
        return cls(list(users), items.item_ids, items.titles, {k: v for k, v in values.items() if v}, years)


def zipf_picks(n: int, size: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``size`` draws from 0..n-1, rank r drawn with probability ~ 1/(r+1)^exponent; ranks are a
    seeded permutation, so the heavy users are not simply the first ids."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    ranks = np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(size), side="right")
    return rng.permutation(n)[np.minimum(ranks, n - 1)]


def make_requests(mix: TrafficMix, population: Population, count: int, seed: int = 0
                  ) -> list[tuple[str, object]]:
    """``count`` (rpc name, request message) pairs in the mix's shares, deterministic in ``seed``."""
    if not population.item_ids:
        raise InvalidInputError("the index has no items to load-test against")
    rng = np.random.default_rng(seed)
    shares = mix.shares()
    if "recommend" in shares and not population.user_ids:
        raise InvalidInputError("weights.recommend > 0 but the index has no users (use a mix without recommend)")
    names = list(shares)
    kinds = rng.choice(len(names), size=count, p=np.array([shares[n] for n in names]))
    n_users, n_items = len(population.user_ids), len(population.item_ids)
    users = zipf_picks(n_users, count, mix.recommend.zipf_exponent, rng) if n_users else np.zeros(count, int)
    items = rng.integers(0, n_items, size=(count, max(3, mix.record.batch)))
    out: list[tuple[str, object]] = []
    for i, kind in enumerate(kinds.tolist()):
        rpc = names[kind]
        if rpc == "recommend":
            out.append((rpc, _recommend(mix, population, population.user_ids[users[i]], items[i], rng)))
        elif rpc == "similar":
            out.append((rpc, pb.SimilarItemsRequest(item_id=population.item_ids[items[i, 0]], k=mix.similar.k)))
        elif rpc == "search":
            out.append((rpc, pb.SearchItemsRequest(text=_search_text(population, items[i, 0], rng), k=mix.search.k)))
        elif rpc == "health":
            out.append((rpc, health_pb2.HealthCheckRequest()))
        else:
            user = population.user_ids[users[i]] if n_users else f"loadtest-{i % 1000}"
            events = [pb.Interaction(user_id=user, item_id=population.item_ids[j], event="view", weight=1.0)
                      for j in items[i, :mix.record.batch].tolist()]
            out.append((rpc, pb.RecordInteractionsRequest(interactions=events)))
    return out


def _recommend(mix: TrafficMix, population: Population, user: str, items: np.ndarray,
               rng: np.random.Generator) -> pb.RecommendRequest:
    shape = mix.recommend
    request = pb.RecommendRequest(user_id=user, k=shape.k)
    if rng.random() < shape.filter_share:
        request.filter.CopyFrom(_filter(population, rng))
    if rng.random() < shape.exclude_share:
        request.exclude_items.extend(population.item_ids[j] for j in items[:3].tolist())
    if rng.random() < shape.diversity_share:
        request.diversity = shape.diversity
    return request


def _filter(population: Population, rng: np.random.Generator) -> pb.Filter:
    attributes = sorted(population.attribute_values)
    if attributes and (population.years is None or rng.random() < 0.7):
        name = attributes[int(rng.integers(len(attributes)))]
        values = population.attribute_values[name]
        value = values[int(rng.integers(len(values)))]
        return pb.Filter(include=[pb.AttributeValues(attribute=name, values=[value])])
    if population.years is None:
        return pb.Filter()
    lo, hi = population.years
    start = int(rng.integers(lo, hi + 1))
    return pb.Filter(year_min=start, year_max=min(hi, start + 20))


def _search_text(population: Population, item: int, rng: np.random.Generator) -> str:
    """Half exact titles (people type titles), half an attribute value such as a genre."""
    values = [v for vs in population.attribute_values.values() for v in vs]
    if values and rng.random() < 0.5:
        return values[int(rng.integers(len(values)))]
    return population.titles[item] or population.item_ids[item]
