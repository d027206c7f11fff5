"""Who is signed in: the ``Identity`` seam, and the demo sign-in behind it.

The site asks an ``Identity`` for the current user id of a request and tells it to sign a user
in or out on a response; nothing else in the site knows how that works. ``DemoIdentity``
trusts a cookie holding the user id, chosen from a list on the sign-in page (no password): a
real deployment replaces it with one that reads its session or token and verifies it, and
the pages stay the same.
"""

from __future__ import annotations

import re
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

USER_ID_MAX = 128
_USER_ID = re.compile(r"^[A-Za-z0-9._@:+-]+$")


def check_user_id(value: str) -> str | None:
    """None when ``value`` is an acceptable user id, else why not (shown on the 400 page)."""
    if not value:
        return "must not be empty"
    if len(value) > USER_ID_MAX:
        return f"must be at most {USER_ID_MAX} characters, got {len(value)}"
    if not _USER_ID.match(value):
        return "may only contain letters, digits and . _ @ : + -"
    return None


class Identity(Protocol):
    """How the site knows who is asking."""

    #: True when the sign-in page should list users to pick from (only the demo does).
    lists_users: bool

    def current_user(self, request: Request) -> str | None:
        """The signed-in user's id, or None."""

    def sign_in(self, response: Response, user_id: str) -> None:
        """Make later requests of this browser come from ``user_id``."""

    def sign_out(self, response: Response) -> None:
        """Forget who this browser is."""


class DemoIdentity:
    """Demo sign-in: any user id may be picked; the id is kept in a cookie, unsigned."""

    lists_users = True

    def __init__(self, cookie: str = "tastebud_user") -> None:
        self.cookie = cookie

    def current_user(self, request: Request) -> str | None:
        value = request.cookies.get(self.cookie, "")
        return value if value and check_user_id(value) is None else None

    def sign_in(self, response: Response, user_id: str) -> None:
        response.set_cookie(self.cookie, user_id, httponly=True, samesite="lax", max_age=30 * 24 * 3600)

    def sign_out(self, response: Response) -> None:
        response.delete_cookie(self.cookie)
