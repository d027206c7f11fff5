"""``tastebud.v1.Admin``: the operator's RPCs (reload, forget, export), kept apart from the read path.

The same servicer runs in the single process and in the router; only how a reload is done
differs, so it comes in as a function. Forgetting and exporting work on the recommender core
being served (``server/privacy.py``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Awaitable, Callable

import grpc

from tastebud.errors import UnavailableError
from tastebud.server.errors import grpc_errors
from tastebud.server.privacy import export_user, forget_user
from tastebud.server.service import RecommenderService
from tastebud.v1 import admin_pb2, admin_pb2_grpc

ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name
RELOAD_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class SwitchResult:
    previous: str
    version: str
    switched: bool
    message: str = ""


Reload = Callable[[float], Awaitable[SwitchResult]]


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(self, service: RecommenderService, executor: Executor | None) -> None:
        self._service = service
        self._executor = executor
        self.reload: Reload | None = None  # set once the server can reload
        # One forget at a time: each rewrites every version's users file (read, drop, write back).
        self._forgetting = threading.Lock()

    @grpc_errors
    async def Reload(self, request: admin_pb2.ReloadRequest, context: grpc.aio.ServicerContext
                     ) -> admin_pb2.ReloadResponse:
        if self.reload is None:
            raise UnavailableError("the server is still starting; retry shortly")
        wait = request.timeout_seconds if request.timeout_seconds > 0 else RELOAD_TIMEOUT_SECONDS
        remaining = context.time_remaining()
        if remaining is not None:
            wait = min(wait, max(0.0, remaining - 0.5))
        result = await self.reload(wait)
        return admin_pb2.ReloadResponse(previous_version=result.previous, version=result.version,
                                        switched=result.switched, message=result.message)

    @grpc_errors
    async def ForgetUser(self, request: admin_pb2.ForgetUserRequest, context: grpc.aio.ServicerContext
                         ) -> admin_pb2.ForgetUserReceipt:
        recommender = self._service.serving()
        loop = asyncio.get_running_loop()
        r = await loop.run_in_executor(self._executor, self._forget, recommender, request.user_id)
        return admin_pb2.ForgetUserReceipt(
            user_id=r.user_id, interactions_removed=r.interactions_removed, impressions_removed=r.impressions_removed,
            subscription_removed=r.subscription_removed, history_items_removed=r.history_items_removed,
            index_versions_rewritten=list(r.index_versions_rewritten), notes=list(r.notes))

    def _forget(self, recommender, user_id: str):
        with self._forgetting:
            return forget_user(recommender, user_id)

    @grpc_errors
    async def ExportUser(self, request: admin_pb2.ExportUserRequest, context: grpc.aio.ServicerContext
                         ) -> admin_pb2.ExportUserResponse:
        recommender = self._service.serving()
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(self._executor, export_user, recommender, request.user_id)
        return admin_pb2.ExportUserResponse(user_id=request.user_id, json=json.dumps(data, indent=2))
