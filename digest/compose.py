"""One user's digest as a MIME message: plain text and HTML alternatives from Jinja2 templates.

Addresses: the catalog holds no email addresses, so the recipient is made from a template,
``{user}@example.com`` by default (``--address-template``); a template giving an address that
is not a plain ``local@domain`` fails that user (and only that user).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email import policy as email_policy
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Sequence
from urllib.parse import quote

from tastebud.digest.tokens import unsubscribe_token, unsubscribe_url

USER_HEADER = "X-Tastebud-User"  # whose message this is: what forgetting a user looks for
from tastebud.errors import InvalidInputError
from tastebud.v1 import recommender_pb2 as pb

if TYPE_CHECKING:
    import jinja2

# Headers are not folded below 998 characters (RFC 5322's limit), so that List-Unsubscribe
# stays two plain <URL>s instead of being folded into encoded words; bodies are
# quoted-printable with RFC 2045's 76-character lines.
HEADER_POLICY = email_policy.default.clone(max_line_length=998)
BODY_POLICY = email_policy.default

DEFAULT_ADDRESS_TEMPLATE = "{user}@example.com"
DEFAULT_UNSUBSCRIBE_URL = "http://localhost:8080/unsubscribe"
DEFAULT_UNSUBSCRIBE_MAILTO = "unsubscribe@example.com"
DEFAULT_SENDER = "tastebud <digest@example.com>"
DEFAULT_SITE_URL = "http://localhost:8080/"

# RFC 5322 dot-atom local part and a DNS host name: enough for the addresses a template makes.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(\.{_ATOM})*\Z")
_DOMAIN = re.compile(r"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


class AddressError(InvalidInputError):
    """The address template gave something that is not a deliverable address for a user."""


def address_for(template: str, user_id: str) -> str:
    """The recipient of ``user_id``'s digest: ``template`` with ``{user}`` replaced, validated."""
    address = template.replace("{user}", user_id)
    local, at, domain = address.rpartition("@")
    if not at or len(address) > 254 or len(local) > 64 or not _LOCAL.match(local) or not _DOMAIN.match(domain):
        raise AddressError(f"bad address {address!r} (from --address-template {template!r})")
    return address


def check_address_template(template: str) -> None:
    if "{user}" not in template:
        raise InvalidInputError(f"--address-template must contain {{user}}, got {template!r}")
    address_for(template, "1")


def verb_phrase(label: str) -> str:
    """"watched" -> "watched", "listened" -> "listened to" (for "because you ... X")."""
    label = label.strip()
    return f"{label} to" if label == "listened" else label


@dataclass(frozen=True)
class DigestStyle:
    """What every message shares: sender, links, wording."""

    secret: str
    sender: str = DEFAULT_SENDER
    address_template: str = DEFAULT_ADDRESS_TEMPLATE
    unsubscribe_url: str = DEFAULT_UNSUBSCRIBE_URL
    unsubscribe_mailto: str = DEFAULT_UNSUBSCRIBE_MAILTO
    site_url: str = DEFAULT_SITE_URL
    label: str = "watched"
    templates: Path | None = None  # a folder whose templates override the bundled ones


@dataclass
class Pick:
    item_id: str
    title: str
    year: int
    reason: str
    because_item_id: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, item: pb.RecommendedItem, label: str) -> "Pick":
        reason = item.reason
        if label != "watched" and reason.startswith("because you watched "):
            reason = f"because you {verb_phrase(label)} " + reason[len("because you watched "):]
        return cls(item.item_id, item.title, item.year, reason, item.because_item_id,
                   {a.attribute: list(a.values) for a in item.attributes})

    @property
    def genres(self) -> list[str]:
        return self.attributes.get("genres", [])


def _environment(templates: Path | None) -> "jinja2.Environment":
    import jinja2

    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("tastebud.digest", "templates")]
    if templates is not None:
        loaders.insert(0, jinja2.FileSystemLoader(str(templates)))
    return jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                              autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"),
                                                                  default_for_string=False),
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


class Composer:
    """Renders messages; one per run, shared by all users (templates are compiled once)."""

    def __init__(self, style: DigestStyle) -> None:
        if not style.secret:
            raise InvalidInputError("no unsubscribe secret: pass --secret or set TASTEBUD_DIGEST_SECRET")
        check_address_template(style.address_template)
        Address(addr_spec=_addr_spec(style.sender))  # a bad sender fails the run, not every user
        self.style = style
        env = _environment(style.templates)
        self._subject = env.get_template("subject.txt.j2")
        self._text = env.get_template("digest.txt.j2")
        self._html = env.get_template("digest.html.j2")

    def compose(self, user_id: str, picks: Sequence[Pick], profile: pb.UserProfile | None = None,
                index_version: str = "", now: datetime | None = None) -> EmailMessage:
        style = self.style
        recipient = address_for(style.address_template, user_id)
        token = unsubscribe_token(style.secret, user_id)
        link = unsubscribe_url(style.unsubscribe_url, user_id, token)
        mailto = f"mailto:{style.unsubscribe_mailto}?subject={quote(f'unsubscribe {user_id} {token}')}"
        context = dict(user_id=user_id, picks=list(picks), label=style.label, verb=verb_phrase(style.label),
                       known=bool(profile.known) if profile is not None else True,
                       history_length=profile.history_length if profile is not None else 0,
                       unsubscribe_link=link, site_url=style.site_url, recipient=recipient)
        subject = " ".join(self._subject.render(context).split())
        message = EmailMessage(policy=HEADER_POLICY)
        message["Subject"] = subject
        message["From"] = style.sender
        message["To"] = recipient
        message["Date"] = format_datetime(now or datetime.now(timezone.utc))
        message["Message-ID"] = make_msgid("digest", domain=recipient.rpartition("@")[2])
        message["List-Unsubscribe"] = f"<{link}>, <{mailto}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message[USER_HEADER] = user_id
        message["X-Tastebud-Picks"] = ", ".join(p.item_id for p in picks)
        if index_version:
            message["X-Tastebud-Index-Version"] = index_version
        message["MIME-Version"] = "1.0"
        message.make_alternative()
        for subtype, template in (("plain", self._text), ("html", self._html)):
            part = MIMEPart(policy=BODY_POLICY)
            part.set_content(template.render(context), subtype=subtype, charset="utf-8", cte="quoted-printable")
            message.attach(part)
        return message


def _addr_spec(mailbox: str) -> str:
    from email.utils import parseaddr

    spec = parseaddr(mailbox)[1]
    if "@" not in spec:
        raise InvalidInputError(f"--from: not an address: {mailbox!r}")
    return spec
