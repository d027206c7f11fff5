"""Protobuf messages <-> core domain objects. No logic beyond shape."""

from __future__ import annotations

from tastebud.index.filters import ItemFilter
from tastebud.server.domain import (IndexSummary, NewInteraction, RecommendQuery, RecommendResult, SearchQuery,
                                    SimilarQuery, UserProfile)
from tastebud.v1 import recommender_pb2 as pb


def filter_from_proto(message: pb.Filter, present: bool) -> ItemFilter | None:
    if not present:
        return None
    return ItemFilter(
        include=tuple((c.attribute, frozenset(c.values)) for c in message.include),
        exclude=tuple((c.attribute, frozenset(c.values)) for c in message.exclude),
        year_min=message.year_min if message.HasField("year_min") else None,
        year_max=message.year_max if message.HasField("year_max") else None,
    )


def recommend_query(r: pb.RecommendRequest) -> RecommendQuery:
    return RecommendQuery(
        user_id=r.user_id, k=r.k, history=tuple(r.history), item_filter=filter_from_proto(r.filter, r.HasField("filter")),
        include_seen=r.include_seen, restrict_to=tuple(r.restrict_to), diversity=r.diversity, taste=r.taste,
        exclude_items=tuple(r.exclude_items), exclude_shown_within_seconds=r.exclude_shown_within_seconds)


def similar_query(r: pb.SimilarItemsRequest) -> SimilarQuery:
    return SimilarQuery(item_id=r.item_id, k=r.k, item_filter=filter_from_proto(r.filter, r.HasField("filter")))


def search_query(r: pb.SearchItemsRequest) -> SearchQuery:
    return SearchQuery(text=r.text, k=r.k, item_filter=filter_from_proto(r.filter, r.HasField("filter")))


def interactions(r: pb.RecordInteractionsRequest) -> list[NewInteraction]:
    return [NewInteraction(i.user_id, i.item_id, i.timestamp, i.event, i.weight) for i in r.interactions]


def recommend_response(result: RecommendResult) -> pb.RecommendResponse:
    return pb.RecommendResponse(
        items=[pb.RecommendedItem(item_id=i.item_id, score=i.score, title=i.title, reason=i.reason,
                                  because_item_id=i.because_item_id, year=i.year,
                                  attributes=[pb.AttributeValues(attribute=a, values=v) for a, v in i.attributes])
               for i in result.items],
        index_version=result.index_version, degraded=result.degraded,
        missing_shards=list(result.missing_shards), notes=list(result.notes))


def index_info(s: IndexSummary) -> pb.IndexInfo:
    return pb.IndexInfo(version=s.version, items=s.items, users=s.users, shards=s.shards, model=s.model,
                        dimension=s.dimension, created_at=s.created_at, index_type=s.index_type,
                        filter_attributes=list(s.filter_attributes), newest_year=s.newest_year)


def user_profile(p: UserProfile) -> pb.UserProfile:
    return pb.UserProfile(user_id=p.user_id, known=p.known, subscribed=p.subscribed, history_length=p.history_length,
                          history=[pb.HistoryItem(item_id=i, title=t, timestamp=ts) for i, t, ts in p.history])
