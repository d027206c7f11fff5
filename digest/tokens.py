"""Unsubscribe links: an HMAC-SHA256 of the user id under a secret the sender and the page
that serves the link share (``--secret`` or ``TASTEBUD_DIGEST_SECRET``).

The page that receives ``?user=ID&token=T`` calls :func:`verify_unsubscribe_token` and then
``SetSubscription(user_id=ID, subscribed=False)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_ENV = "TASTEBUD_DIGEST_SECRET"
_PURPOSE = b"tastebud-unsubscribe\x00"


def unsubscribe_token(secret: str | bytes, user_id: str) -> str:
    """URL-safe token (43 characters) binding ``user_id`` to ``secret``."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise ValueError("the unsubscribe secret must not be empty")
    digest = hmac.new(key, _PURPOSE + user_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_unsubscribe_token(secret: str | bytes, user_id: str, token: str) -> bool:
    """True when ``token`` was made by :func:`unsubscribe_token` for this user and secret."""
    return hmac.compare_digest(unsubscribe_token(secret, user_id), token)


def unsubscribe_url(base: str, user_id: str, token: str) -> str:
    """``base`` with ``user`` and ``token`` added to its query (other parameters are kept)."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("user", "token")]
    query += [("user", user_id), ("token", token)]
    return urlunsplit(parts._replace(query=urlencode(query)))
