"""The homepage website: Starlette routes, Jinja2 templates, htmx partial updates.

Every page is a plain server-rendered page that works without JavaScript (links, forms, POST
then 303 redirect); with htmx loaded, the card buttons swap just the rows and the search and
navigation are boosted. All data comes from tastebud over gRPC (``tastebud.web.client``); a row
whose call fails shows a plain sentence and the rest of the page still renders; when nothing
answers the page is a 503 that says so. A bad form value is a 400 page naming the field.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Iterable
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tastebud.web.client import Answer, Card, ServiceError, TastebudClient, User, genre_filter
from tastebud.web.identity import DemoIdentity, Identity, check_user_id
from tastebud.web.labels import Labels

log = logging.getLogger(__name__)
HERE = Path(__file__).parent

RATING_MIN, RATING_MAX = 1, 5
SEARCH_MAX = 200
TASTE_MAX = 300
ITEM_ID_MAX = 256
GENRES_MAX = 8


@dataclass(frozen=True)
class Settings:
    """What ``tastebud web`` is configured with."""

    target: str = "localhost:50051"
    timeout: float = 2.0  # deadline of every gRPC call, seconds
    impression_timeout: float = 1.0
    labels: Labels = field(default_factory=Labels)
    identity: Identity = field(default_factory=DemoIdentity)
    row_size: int = 10
    diversity: float = 0.3
    genre_attribute: str = "genres"
    users_per_page: int = 60
    taste_cookie: str = "tastebud_taste"
    info_ttl: float = 30.0  # seconds a GetIndexInfo answer is reused
    unsubscribe_secret: str = ""  # shared with `tastebud digest` (its links are signed with it); "": page off


class BadForm(Exception):
    """A form or query value that is not acceptable: a 400 page naming ``field``."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


@dataclass
class Row:
    key: str
    title: str
    cards: list[Card] = field(default_factory=list)
    error: str | None = None  # a sentence for the user when the row's call failed
    outage: bool = False
    empty: str = "Nothing to show here yet."
    notes: tuple[str, ...] = ()


@dataclass
class Taste:
    """What a new user told the onboarding page (kept in a cookie, per user)."""

    user_id: str
    genres: list[str]
    text: str

    def as_text(self) -> str:
        parts = []
        if self.genres:
            parts.append(f"I like {', '.join(self.genres)}.")
        if self.text:
            parts.append(self.text)
        return " ".join(parts)

    def encode(self) -> str:
        raw = json.dumps({"u": self.user_id, "g": self.genres, "t": self.text}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @classmethod
    def decode(cls, value: str, user_id: str) -> "Taste | None":
        try:
            data = json.loads(base64.urlsafe_b64decode(value.encode()).decode())
            taste = cls(str(data["u"]), [str(g) for g in data.get("g", [])][:GENRES_MAX],
                        str(data.get("t", ""))[:TASTE_MAX])
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return taste if taste.user_id == user_id else None


def _safe_next(value: str, default: str = "/home") -> str:
    """Only local paths are redirect targets (no open redirect)."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value and len(value) < 500:
        return value
    return default


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _str(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


class Site:
    """The routes, bound to one client and one settings object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals.update(labels=settings.labels, rating_range=range(RATING_MIN, RATING_MAX + 1))
        self.client: TastebudClient | None = None
        self._genres: list[str] | None = None
        self._info: tuple[float, Any] | None = None

    # -- plumbing ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette):
        self.client = TastebudClient(self.settings.target, self.settings.timeout)
        try:
            yield
        finally:
            await self.client.close()

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("user_id", self.settings.identity.current_user(request))
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    async def bad_form(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadForm)
        if _is_htmx(request) and request.method == "POST":
            return self._flash(request, 400, exc.field, exc.problem)
        return self.render(request, "error.html", 400, title="That value is not accepted",
                           field=exc.field, problem=exc.problem)

    def _flash(self, request: Request, status: int, field: str | None, problem: str) -> Response:
        response = self.render(request, "_flash.html", status, field=field, problem=problem)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = {404: "Page not found", 405: "Not allowed here"}.get(exc.status_code, "Request not accepted")
        return self.render(request, "error.html", exc.status_code, title=title, problem=None, field=None)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return self.render(request, "error.html", 500, title="Something went wrong on our side",
                           problem="Please try again in a moment.", field=None, user_id=None)

    def routes(self) -> list:
        return [
            Route("/", self.index),
            Route("/signin", self.signin, methods=["GET", "POST"]),
            Route("/signout", self.signout, methods=["POST"]),
            Route("/home", self.home),
            Route("/onboarding", self.onboarding, methods=["GET", "POST"]),
            Route("/interact", self.interact, methods=["POST"]),
            Route("/search", self.search),
            Route("/unsubscribe", self.unsubscribe, methods=["GET", "POST"]),
            Route("/healthz", self.healthz),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]

    # -- pages ------------------------------------------------------------------------------
    async def unsubscribe(self, request: Request) -> Response:
        """The weekly email's unsubscribe link: GET asks (mail scanners follow links), POST does
        it, including the mail client's RFC 8058 one-click POST. The link's token is an HMAC of
        the user id under the secret the digest signed it with."""
        from tastebud.digest.tokens import verify_unsubscribe_token

        user_id, token = request.query_params.get("user", ""), request.query_params.get("token", "")
        if not self.settings.unsubscribe_secret:
            raise BadForm("token", "this site has no unsubscribe secret configured (tastebud web --secret)")
        # Any id the server accepts can get mail, so only emptiness and length are checked here
        # (the sign-in form's stricter rule would strand some users); the HMAC does the rest.
        if not user_id or len(user_id) > 256:
            raise BadForm("user", "must be 1..256 characters")
        if not token or not verify_unsubscribe_token(self.settings.unsubscribe_secret, user_id, token):
            raise BadForm("token", "this unsubscribe link is not valid for that user")
        if request.method == "GET":
            return self.render(request, "unsubscribe.html", user=user_id, token=token, done=False)
        assert self.client is not None
        try:
            await self.client.set_subscription(user_id, False)
        except ServiceError as exc:
            return self.render(request, "error.html", 503, title="Could not unsubscribe right now",
                               problem=exc.message, field=None)
        return self.render(request, "unsubscribe.html", user=user_id, token=token, done=True)

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def index(self, request: Request) -> Response:
        user = self.settings.identity.current_user(request)
        return RedirectResponse("/home" if user else "/signin", status_code=303)

    async def signin(self, request: Request) -> Response:
        identity = self.settings.identity
        if request.method == "POST":
            form = await request.form()
            user_id = _str(form, "user_id")
            problem = check_user_id(user_id)
            if problem:
                raise BadForm("user_id", problem)
            response = RedirectResponse("/home", status_code=303)
            identity.sign_in(response, user_id)
            response.delete_cookie(self.settings.taste_cookie)
            return response
        users, next_token, error, status = [], "", None, 200
        token = request.query_params.get("page", "")
        if len(token) > 200:
            raise BadForm("page", "is not a page of this list")
        if identity.lists_users:
            try:
                users, next_token = await self.client.list_users(self.settings.users_per_page, token)
            except ServiceError as exc:
                if exc.code.name == "INVALID_ARGUMENT" and token:
                    raise BadForm("page", "is not a page of this list") from None
                error, status = exc.message, 503 if exc.outage else 200
        return self.render(request, "signin.html", status, users=users, next_token=next_token, error=error,
                           user_id=identity.current_user(request))

    async def signout(self, request: Request) -> Response:
        response = RedirectResponse("/signin", status_code=303)
        self.settings.identity.sign_out(response)
        response.delete_cookie(self.settings.taste_cookie)
        return response

    def _require_user(self, request: Request) -> str | None:
        return self.settings.identity.current_user(request)

    def _taste(self, request: Request, user_id: str) -> Taste | None:
        value = request.cookies.get(self.settings.taste_cookie, "")
        return Taste.decode(value, user_id) if value else None

    async def home(self, request: Request) -> Response:
        user_id = self._require_user(request)
        if user_id is None:
            return RedirectResponse("/signin", status_code=303)
        taste = self._taste(request, user_id)
        profile, profile_error = await self._profile(user_id)
        if profile is not None and not profile.known and profile.history_length == 0 and taste is None:
            return RedirectResponse("/onboarding", status_code=303)
        rows = await self.rows(user_id, profile, profile_error, taste)
        return self._rows_response(request, "home.html", user_id, rows, profile=profile)

    def _rows_response(self, request: Request, template: str, user_id: str, rows: list[Row], flash: str | None = None,
                       **context: Any) -> Response:
        failed = [r for r in rows if r.error]
        status = 503 if rows and len(failed) == len(rows) and all(r.outage for r in failed) else 200
        response = self.render(request, template, status, rows=rows, flash=flash, outage=status == 503,
                               **context)
        shown = [c.item_id for r in rows for c in r.cards]
        if shown:
            response.background = BackgroundTask(self._record_impressions, user_id, shown)
        return response

    async def _record_impressions(self, user_id: str, item_ids: list[str]) -> None:
        """One RecordInteractions per render: every card shown, event "impression"; best effort."""
        try:
            await self.client.record(user_id, [(i, "impression", 0.0) for i in dict.fromkeys(item_ids)],
                                     timeout=self.settings.impression_timeout)
        except ServiceError as exc:
            log.info("impressions for user %s not recorded: %s", user_id, exc)

    async def _profile(self, user_id: str) -> tuple[User | None, ServiceError | None]:
        try:
            return await self.client.user(user_id, history_limit=100), None
        except ServiceError as exc:
            return None, exc

    async def rows(self, user_id: str, profile: User | None, profile_error: ServiceError | None,
                   taste: Taste | None) -> list[Row]:
        s, words = self.settings, self.settings.labels.words
        n = s.row_size
        seen = [h[0] for h in profile.history] if profile else []
        taste_text = taste.as_text() if taste else ""
        new_user = profile is not None and profile.history_length == 0
        # The cold-start ladder: a new user's picks come from what they told onboarding (the
        # picked genres as a filter and as text); once they have a history it leads, and the
        # taste text stays as one pseudo-item that fades as the history grows.
        picks_filter = (genre_filter(s.genre_attribute, taste.genres)
                        if taste and taste.genres and (new_user or profile is None) else None)

        async def new_for_you() -> Answer | None:
            newest = int((await self.index_info()).newest_year)
            if newest <= 0:
                return None  # no release years in this catalog
            return await self.client.recommend(user_id, 2 * n, taste=taste_text,
                                               filter=genre_filter(s.genre_attribute, [], year_min=newest - 1))

        calls: dict[str, Awaitable[Any]] = {
            "top": self.client.recommend(user_id, 2 * n, diversity=s.diversity, taste=taste_text,
                                         filter=picks_filter),
            "new": new_for_you(),
            "popular": self.client.recommend("", 2 * n, exclude_items=seen),
        }
        because_title = None
        if profile and profile.history:
            recent_id, recent_title, _ = profile.history[0]
            because_title = recent_title or recent_id
            calls["because"] = self.client.similar(recent_id, 2 * n + len(seen))
            if s.labels.kinds:  # "watched" or "listened to" depends on the recent item's kind
                calls["recent"] = self.client.item(recent_id)
        results = dict(zip(calls, await asyncio.gather(*calls.values(), return_exceptions=True)))

        rows = [Row("top", "Top picks for you")]
        if "because" in results:
            recent = results.get("recent")
            verb = s.labels.for_kind(recent.kind).verb if isinstance(recent, Card) else words.verb
            rows.append(Row("because", f"Because you {verb} {because_title}"))
        elif profile_error is not None:
            rows.append(Row("because", f"Because you {words.verb} …", error=profile_error.message,
                            outage=profile_error.outage))
        rows.append(Row("new", "New for you"))
        rows.append(Row("popular", "Popular now"))
        shown: set[str] = set(seen)
        for row in rows:
            if row.error:
                continue
            result = results.get(row.key)
            if isinstance(result, ServiceError):
                row.error, row.outage = result.message, result.outage
            elif isinstance(result, BaseException):
                log.error("row %s failed", row.key, exc_info=result)
                row.error = "This row could not be made."
            elif result is None:
                row.empty = "This catalog has no release years, so nothing is marked new."
            else:
                row.cards = _take(result.cards, shown, n)
                row.notes = result.notes if result.degraded else ()
                if row.key == "new":
                    row.empty = "Nothing new for you right now."
        return rows

    async def index_info(self):
        """GetIndexInfo, kept for ``info_ttl`` seconds (newest_year moves only with a new index)."""
        now = time.monotonic()
        if self._info is not None and now - self._info[0] < self.settings.info_ttl:
            return self._info[1]
        info = await self.client.index_info()
        self._info = (now, info)
        return info

    async def onboarding(self, request: Request) -> Response:
        user_id = self._require_user(request)
        if user_id is None:
            return RedirectResponse("/signin", status_code=303)
        genres, error = await self.genre_values()
        if request.method == "POST":
            form = await request.form()
            if _str(form, "action") == "skip":
                taste = Taste(user_id, [], "")
            else:
                picked = [v.strip() for v in form.getlist("genres") if isinstance(v, str) and v.strip()]
                text = _str(form, "taste")
                if len(picked) > GENRES_MAX:
                    raise BadForm("genres", f"pick at most {GENRES_MAX}, got {len(picked)}")
                unknown = [g for g in picked if genres and g not in genres]
                if unknown:
                    raise BadForm("genres", f"unknown genre {unknown[0]!r}")
                if len(text) > TASTE_MAX:
                    raise BadForm("taste", f"must be at most {TASTE_MAX} characters, got {len(text)}")
                if not picked and not text:
                    raise BadForm("genres", "pick at least one genre or write what you like (taste), or skip")
                taste = Taste(user_id, picked, text)
            response = RedirectResponse("/home", status_code=303)
            response.set_cookie(self.settings.taste_cookie, taste.encode(), httponly=True, samesite="lax",
                                max_age=30 * 24 * 3600)
            return response
        return self.render(request, "onboarding.html", genres=genres, error=error)

    async def genre_values(self) -> tuple[list[str], str | None]:
        """The catalog's genre values, through the API: the filterable attribute named
        ``genre_attribute`` (IndexInfo.filter_attributes), its values gathered from the
        attributes of the 1,000 most popular items (the API has no call listing values)."""
        if self._genres is not None:
            return self._genres, None
        try:
            info = await self.index_info()
            if self.settings.genre_attribute not in info.filter_attributes:
                self._genres = []
                return [], None
            answer = await self.client.recommend("", 1000)
        except ServiceError as exc:
            return [], exc.message
        values = sorted({g for card in answer.cards for g in card.attributes.get(self.settings.genre_attribute, ())})
        if values:
            self._genres = values
        return values, None

    async def interact(self, request: Request) -> Response:
        user_id = self._require_user(request)
        if user_id is None:
            return RedirectResponse("/signin", status_code=303)
        form = await request.form()
        item_id = _str(form, "item_id")
        if not item_id:
            raise BadForm("item_id", "must not be empty")
        if len(item_id) > ITEM_ID_MAX:
            raise BadForm("item_id", f"must be at most {ITEM_ID_MAX} characters")
        action = _str(form, "action") or "done"
        kind = _str(form, "kind")
        words = self.settings.labels.for_kind(kind)
        if action == "done":
            event, weight = words.event, 1.0
        elif action == "rate":
            raw = _str(form, "rating")
            if not re.fullmatch(r"\d{1,3}", raw) or not RATING_MIN <= int(raw) <= RATING_MAX:
                raise BadForm("rating", f"must be a whole number from {RATING_MIN} to {RATING_MAX}, got {raw!r}")
            # A rating is a graded view: 3 stars weighs like a plain view, 5 stars 5/3 of one.
            event, weight = "rating", int(raw) / 3.0
        else:
            raise BadForm("action", f"must be 'done' or 'rate', got {action!r}")
        view = _str(form, "view") or "rows"
        next_url = _safe_next(_str(form, "next"))
        try:
            await self.client.record(user_id, [(item_id, event, weight)])
        except ServiceError as exc:
            if exc.code.name == "INVALID_ARGUMENT":
                raise BadForm("item_id", exc.details) from None
            if _is_htmx(request):
                return self._flash(request, 503, None, f"Not recorded. {exc.message}")
            return self.render(request, "error.html", 503, title="Not recorded", problem=exc.message, field=None)
        done = words.done if action == "done" else f"Rated {raw} of {RATING_MAX}"
        if not _is_htmx(request):
            return RedirectResponse(next_url, status_code=303)
        if view == "card":
            return self.render(request, "_done.html", item_id=item_id, title=_str(form, "title"), done=done)
        taste = self._taste(request, user_id)
        profile, profile_error = await self._profile(user_id)
        rows = await self.rows(user_id, profile, profile_error, taste)
        return self._rows_response(request, "_rows.html", user_id, rows, flash=f"{done}: {_str(form, 'title')}")

    async def search(self, request: Request) -> Response:
        user_id = self._require_user(request)
        if "q" not in request.query_params:
            return self.render(request, "search.html", q="", answer=None, error=None)
        q = request.query_params.get("q", "").strip()
        if not q:
            raise BadForm("q", "the search box is empty: type a title or what you are in the mood for")
        if len(q) > SEARCH_MAX:
            raise BadForm("q", f"must be at most {SEARCH_MAX} characters, got {len(q)}")
        answer, error, status = None, None, 200
        try:
            answer = await self.client.search(q, 20)
        except ServiceError as exc:
            error, status = exc.message, 503 if exc.outage else 200
        return self.render(request, "search.html", status, q=q, answer=answer, error=error,
                           next_url=f"/search?q={quote(q)}", user_id=user_id)


def _take(cards: Iterable[Card], shown: set[str], n: int) -> list[Card]:
    """The first n cards not already on the page (rows are filled in order, no repeats)."""
    out = []
    for card in cards:
        if card.item_id in shown:
            continue
        shown.add(card.item_id)
        out.append(card)
        if len(out) == n:
            break
    return out


def create_app(settings: Settings | None = None) -> Starlette:
    site = Site(settings or Settings())
    app = Starlette(routes=site.routes(), lifespan=site.lifespan, exception_handlers={
        BadForm: site.bad_form, HTTPException: site.http_error, Exception: site.server_error})
    app.state.site = site
    return app
