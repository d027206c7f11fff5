"""The gRPC servicer of ``tastebud.v1.Recommender``: convert, call the core, convert back.

Deadlines: each handler turns ``context.time_remaining()`` into a ``Deadline`` for the core,
which cuts optional work (re-ranking, slow shards) rather than answer late.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

import grpc

from tastebud.errors import UnavailableError
from tastebud.server import convert
from tastebud.server.domain import Deadline
from tastebud.server.errors import grpc_errors
from tastebud.server.recommender import Recommender
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc

# Time kept back from the caller's deadline for serialising and sending the answer.
RESPONSE_MARGIN_SECONDS = 0.002


def deadline_of(context: grpc.aio.ServicerContext) -> Deadline:
    remaining = context.time_remaining()
    return Deadline.after(None if remaining is None else remaining - RESPONSE_MARGIN_SECONDS)


class RecommenderService(pb_grpc.RecommenderServicer):
    """Answers UNAVAILABLE until ``recommender`` is set (the index is still loading)."""

    def __init__(self, recommender: Recommender | None = None, executor: Executor | None = None) -> None:
        self.recommender = recommender
        self._executor = executor

    @property
    def _recommender(self) -> Recommender:
        return self.serving()

    def serving(self) -> Recommender:
        """The core being served; UNAVAILABLE while the index is still loading."""
        if self.recommender is None:
            raise UnavailableError("the index is still loading; retry shortly")
        return self.recommender

    @grpc_errors
    async def Recommend(self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext) -> pb.RecommendResponse:
        result = await self._recommender.recommend(convert.recommend_query(request), deadline_of(context))
        return convert.recommend_response(result)

    @grpc_errors
    async def SimilarItems(self, request: pb.SimilarItemsRequest, context: grpc.aio.ServicerContext
                           ) -> pb.RecommendResponse:
        result = await self._recommender.similar(convert.similar_query(request), deadline_of(context))
        return convert.recommend_response(result)

    @grpc_errors
    async def SearchItems(self, request: pb.SearchItemsRequest, context: grpc.aio.ServicerContext
                          ) -> pb.RecommendResponse:
        result = await self._recommender.search(convert.search_query(request), deadline_of(context))
        return convert.recommend_response(result)

    @grpc_errors
    async def RecordInteractions(self, request: pb.RecordInteractionsRequest, context: grpc.aio.ServicerContext
                                 ) -> pb.RecordInteractionsResponse:
        events = convert.interactions(request)
        loop = asyncio.get_running_loop()
        recorded = await loop.run_in_executor(self._executor, self._recommender.record, events)
        return pb.RecordInteractionsResponse(recorded=recorded)

    @grpc_errors
    async def GetUser(self, request: pb.GetUserRequest, context: grpc.aio.ServicerContext) -> pb.UserProfile:
        # On the thread pool: it reads the SQLite store, which a forget may hold for a while.
        loop = asyncio.get_running_loop()
        profile = await loop.run_in_executor(self._executor, self._recommender.user, request.user_id,
                                             request.history_limit)
        return convert.user_profile(profile)

    @grpc_errors
    async def ListUsers(self, request: pb.ListUsersRequest, context: grpc.aio.ServicerContext
                        ) -> pb.ListUsersResponse:
        loop = asyncio.get_running_loop()
        users, token = await loop.run_in_executor(self._executor, self._recommender.list_users, request.page_size,
                                                  request.page_token)
        return pb.ListUsersResponse(user_ids=users, next_page_token=token)

    @grpc_errors
    async def SetSubscription(self, request: pb.SetSubscriptionRequest, context: grpc.aio.ServicerContext
                              ) -> pb.SetSubscriptionResponse:
        loop = asyncio.get_running_loop()
        subscribed = await loop.run_in_executor(self._executor, self._recommender.set_subscription,
                                                request.user_id, request.subscribed)
        return pb.SetSubscriptionResponse(subscribed=subscribed)

    @grpc_errors
    async def GetIndexInfo(self, request: pb.GetIndexInfoRequest, context: grpc.aio.ServicerContext) -> pb.IndexInfo:
        return convert.index_info(self._recommender.info())
