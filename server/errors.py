"""The one place where core errors become gRPC status codes.

Client mistakes keep their message (it names the field); anything unexpected is logged with
its traceback and returned as INTERNAL with a generic message, so internals never leak.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Awaitable, Callable, TypeVar

import grpc

from tastebud.errors import InvalidInputError, NotFoundError, PreconditionError, UnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")

_STATUS: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (PreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
)


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    for kind, code in _STATUS:
        if isinstance(exc, kind):
            return code
    return None


def grpc_errors(handler: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Decorate an async servicer method: map tastebud errors to status codes, hide the rest."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await handler(self, request, context)
        except Exception as exc:  # noqa: BLE001 - this is the edge where every error is mapped
            if isinstance(exc, grpc.aio.AbortError):
                raise
            code = status_for(exc)
            if code is None:
                log.exception("unexpected error in %s", handler.__name__)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")
            await context.abort(code, str(exc))
            raise  # unreachable: abort raises

    return wrapper
