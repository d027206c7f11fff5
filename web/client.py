"""The website's only way to tastebud: the public ``tastebud.v1`` gRPC API over ``grpc.aio``.

Every call carries a deadline. A failed call raises ``ServiceError`` with a sentence a person
can read ("the recommendation service is not reachable"); the status code is kept for the logs
and for deciding between a row's banner and a 503 page. Nothing here imports server code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import grpc

from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

# Codes that mean "the service cannot answer now", as opposed to "it refused this request".
OUTAGE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                          grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED})


class ServiceError(Exception):
    """A gRPC call that did not answer; ``message`` is fit to show to a user."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        self.method, self.code, self.details = method, code, details
        super().__init__(f"{method}: {code.name}: {details}")

    @property
    def outage(self) -> bool:
        """True when the service is down or slow (not a refusal of this request)."""
        return self.code in OUTAGE_CODES

    @property
    def message(self) -> str:
        if self.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return "The recommendation service is slow to answer right now."
        if self.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            return "The recommendation service is not reachable right now."
        if self.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return "The recommendation service is busy right now."
        if self.code == grpc.StatusCode.UNIMPLEMENTED:
            return "This server does not offer this yet."
        if self.code == grpc.StatusCode.INVALID_ARGUMENT:
            return f"The recommendation service refused the request: {self.details}"
        return "The recommendation service could not answer."


@dataclass(frozen=True, slots=True)
class Card:
    """One item as a card shows it."""

    item_id: str
    title: str
    year: int
    genres: tuple[str, ...]
    reason: str
    kind: str = ""
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    @classmethod
    def from_proto(cls, item: pb.RecommendedItem) -> "Card":
        attributes = {a.attribute: tuple(a.values) for a in item.attributes}
        kind = attributes.get("kind", ("",))
        return cls(item_id=item.item_id, title=item.title or item.item_id, year=int(item.year),
                   genres=attributes.get("genres", ()), reason=item.reason, kind=kind[0] if kind else "",
                   attributes=attributes)


@dataclass(frozen=True, slots=True)
class Answer:
    """A RecommendResponse as the site uses it."""

    cards: list[Card]
    degraded: bool = False
    notes: tuple[str, ...] = ()

    @classmethod
    def from_proto(cls, response: pb.RecommendResponse) -> "Answer":
        return cls(cards=[Card.from_proto(i) for i in response.items], degraded=response.degraded,
                   notes=tuple(response.notes))


@dataclass(frozen=True, slots=True)
class User:
    """GetUser's answer."""

    user_id: str
    known: bool
    subscribed: bool
    history_length: int
    history: list[tuple[str, str, float]]  # (item_id, title, timestamp), newest first


def genre_filter(attribute: str, values: Sequence[str], *, year_min: int | None = None) -> pb.Filter | None:
    f = pb.Filter()
    if values:
        f.include.append(pb.AttributeValues(attribute=attribute, values=list(values)))
    if year_min is not None:
        f.year_min = year_min
    return f if (values or year_min is not None) else None


class TastebudClient:
    """A grpc.aio channel to one tastebud server; create and close it inside the event loop."""

    def __init__(self, target: str, timeout: float = 2.0) -> None:
        self.target, self.timeout = target, timeout
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = pb_grpc.RecommenderStub(self.channel)

    async def close(self) -> None:
        await self.channel.close(grace=None)

    async def _call(self, method: str, request, timeout: float | None = None):
        try:
            return await getattr(self.stub, method)(request, timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as exc:
            error = ServiceError(method, exc.code(), exc.details() or "")
            log.warning("tastebud %s failed: %s", self.target, error)
            raise error from None

    async def recommend(self, user_id: str, k: int, *, diversity: float = 0.0, taste: str = "",
                        filter: pb.Filter | None = None, exclude_items: Iterable[str] = ()) -> Answer:
        request = pb.RecommendRequest(user_id=user_id, k=k, diversity=diversity, taste=taste,
                                      exclude_items=list(exclude_items))
        if filter is not None:
            request.filter.CopyFrom(filter)
        return Answer.from_proto(await self._call("Recommend", request))

    async def item(self, item_id: str) -> Card | None:
        """One item with its attributes, by id (Recommend restricted to it, seen or not)."""
        request = pb.RecommendRequest(user_id="", k=1, restrict_to=[item_id], include_seen=True)
        items = (await self._call("Recommend", request)).items
        return Card.from_proto(items[0]) if items else None

    async def similar(self, item_id: str, k: int) -> Answer:
        return Answer.from_proto(await self._call("SimilarItems", pb.SimilarItemsRequest(item_id=item_id, k=k)))

    async def search(self, text: str, k: int) -> Answer:
        return Answer.from_proto(await self._call("SearchItems", pb.SearchItemsRequest(text=text, k=k)))

    async def record(self, user_id: str, events: Sequence[tuple[str, str, float]], timeout: float | None = None) -> int:
        """Record (item_id, event, weight) events for a user; returns how many were stored."""
        request = pb.RecordInteractionsRequest(interactions=[
            pb.Interaction(user_id=user_id, item_id=item_id, event=event, weight=weight)
            for item_id, event, weight in events])
        return (await self._call("RecordInteractions", request, timeout)).recorded

    async def index_info(self) -> pb.IndexInfo:
        return await self._call("GetIndexInfo", pb.GetIndexInfoRequest())

    async def user(self, user_id: str, history_limit: int = 10) -> User:
        p = await self._call("GetUser", pb.GetUserRequest(user_id=user_id, history_limit=history_limit))
        return User(user_id=p.user_id or user_id, known=p.known, subscribed=p.subscribed,
                    history_length=p.history_length,
                    history=[(h.item_id, h.title, h.timestamp) for h in p.history])

    async def set_subscription(self, user_id: str, subscribed: bool) -> bool:
        r = await self._call("SetSubscription", pb.SetSubscriptionRequest(user_id=user_id, subscribed=subscribed))
        return r.subscribed

    async def list_users(self, page_size: int = 60, page_token: str = "") -> tuple[list[str], str]:
        r = await self._call("ListUsers", pb.ListUsersRequest(page_size=page_size, page_token=page_token))
        return list(r.user_ids), r.next_page_token
