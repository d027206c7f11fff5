"""The digest run: users -> (GetUser, Recommend) -> message -> sink -> impressions.

Talks to tastebud only through ``tastebud.v1`` over a ``grpc.aio`` channel, every call with a
deadline. At most ``concurrency`` users are in flight; whatever goes wrong for one user (an RPC
error, a bad address, a refused recipient) is recorded in the summary and the others go on.
Impressions are recorded only after the message was delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import grpc

from tastebud.digest.compose import Composer, Pick
from tastebud.digest.deliver import DeliveryError, Sink
from tastebud.errors import InvalidInputError, TastebudError
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

WEEK_SECONDS = 7 * 24 * 3600.0
IMPRESSION = "impression"
LIST_PAGE_SIZE = 1000


@dataclass(frozen=True)
class DigestOptions:
    target: str = "localhost:50051"
    k: int = 10
    diversity: float = 0.3
    exclude_shown_within_seconds: float = WEEK_SECONDS
    timeout: float = 5.0  # deadline of every RPC, seconds
    concurrency: int = 8
    record_impressions: bool = True
    progress: bool = True

    def request_for(self, user_id: str) -> pb.RecommendRequest:
        """The Recommend request the digest makes for ``user_id`` (tests make the same one)."""
        return pb.RecommendRequest(user_id=user_id, k=self.k, diversity=self.diversity,
                                   exclude_shown_within_seconds=self.exclude_shown_within_seconds)

    def validate(self) -> None:
        if not 1 <= self.k <= 1000:
            raise InvalidInputError(f"--k must be within 1..1000, got {self.k}")
        if not 0.0 <= self.diversity <= 1.0:
            raise InvalidInputError(f"--diversity must be within 0..1, got {self.diversity}")
        if self.exclude_shown_within_seconds < 0:
            raise InvalidInputError(f"--exclude-shown-days must be >= 0, got {self.exclude_shown_within_seconds}")
        if self.timeout <= 0:
            raise InvalidInputError(f"--timeout must be > 0, got {self.timeout}")
        if self.concurrency < 1:
            raise InvalidInputError(f"--concurrency must be >= 1, got {self.concurrency}")


@dataclass
class Summary:
    sent: dict[str, list[str]] = field(default_factory=dict)  # user -> item ids in the message
    skipped: dict[str, str] = field(default_factory=dict)  # user -> why
    failed: dict[str, str] = field(default_factory=dict)  # user -> what went wrong
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        rate = f", {len(self.sent) / self.seconds:.1f} messages/s" if self.seconds > 0 and self.sent else ""
        return (f"digest: {len(self.sent)} sent, {len(self.skipped)} skipped, {len(self.failed)} failed "
                f"in {self.seconds:.1f} s{rate}")

    def report(self, max_lines: int = 50) -> str:
        lines = [self.line()]
        if self.skipped:
            reasons = Counter(self.skipped.values())
            lines.append("skipped: " + ", ".join(f"{n} {why}" for why, n in reasons.most_common()))
        for n, (user, why) in enumerate(self.failed.items()):
            if n == max_lines:
                lines.append(f"... and {len(self.failed) - max_lines} more failures")
                break
            lines.append(f"failed: user {user}: {why}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"sent": len(self.sent), "skipped": len(self.skipped), "failed": len(self.failed),
                "seconds": round(self.seconds, 3),
                "messages_per_second": round(len(self.sent) / self.seconds, 2) if self.seconds > 0 else None,
                "skipped_users": self.skipped, "failed_users": self.failed}


def parse_users(text: str) -> list[str] | None:
    """``all`` -> None (every user, from ListUsers); ``42,43`` -> ["42", "43"] (deduplicated)."""
    if text.strip() == "all":
        return None
    users = list(dict.fromkeys(u.strip() for u in text.split(",") if u.strip()))
    if not users:
        raise InvalidInputError(f"--users expects 'all' or comma-separated user ids, got {text!r}")
    return users


def _rpc_error(method: str, exc: grpc.aio.AioRpcError) -> str:
    return f"{method} failed: {exc.code().name}: {exc.details()}"


async def list_all_users(stub: pb_grpc.RecommenderStub, timeout: float) -> list[str]:
    """Every user id, paging through ListUsers in the server's stable order."""
    users: list[str] = []
    token, seen_tokens = "", set()
    while True:
        try:
            page = await stub.ListUsers(pb.ListUsersRequest(page_size=LIST_PAGE_SIZE, page_token=token),
                                        timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise TastebudError(_rpc_error("ListUsers", exc)) from exc
        users.extend(page.user_ids)
        token = page.next_page_token
        if not token:
            break
        if token in seen_tokens:
            raise TastebudError(f"ListUsers returned the page token {token!r} twice")
        seen_tokens.add(token)
    return list(dict.fromkeys(users))


class _Skip(Exception):
    pass


class _Fail(Exception):
    pass


async def _one_user(stub: pb_grpc.RecommenderStub, user_id: str, options: DigestOptions, composer: Composer,
                    sink: Sink, summary: Summary) -> None:
    method = "GetUser"
    try:
        profile = await stub.GetUser(pb.GetUserRequest(user_id=user_id, history_limit=0), timeout=options.timeout)
        if not profile.subscribed:
            raise _Skip("unsubscribed")
        method = "Recommend"
        response = await stub.Recommend(options.request_for(user_id), timeout=options.timeout)
        picks = [Pick.from_proto(item, composer.style.label) for item in response.items]
        if not picks:
            raise _Skip("no picks")
        message = composer.compose(user_id, picks, profile, response.index_version)
        await sink.deliver(user_id, message)
        item_ids = [p.item_id for p in picks]
        if options.record_impressions:
            method = "RecordInteractions"
            try:
                await stub.RecordInteractions(pb.RecordInteractionsRequest(interactions=[
                    pb.Interaction(user_id=user_id, item_id=i, event=IMPRESSION) for i in item_ids]),
                    timeout=options.timeout)
            except grpc.aio.AioRpcError as exc:
                raise _Fail(f"message delivered, but its impressions were not recorded: {_rpc_error(method, exc)}")
        summary.sent[user_id] = item_ids
    except _Skip as exc:
        summary.skipped[user_id] = str(exc)
    except _Fail as exc:
        summary.failed[user_id] = str(exc)
    except grpc.aio.AioRpcError as exc:
        summary.failed[user_id] = _rpc_error(method, exc)
    except (TastebudError, DeliveryError) as exc:
        summary.failed[user_id] = str(exc)
    except Exception as exc:  # a bug must not stop the other users; it is named in the summary
        log.exception("digest for user %s", user_id)
        summary.failed[user_id] = f"unexpected {type(exc).__name__}: {exc}"


async def send_digests(options: DigestOptions, users: Sequence[str] | None, composer: Composer, sink: Sink,
                       on_progress: Callable[[int, Summary], None] | None = None,
                       channel: grpc.aio.Channel | None = None) -> Summary:
    """Run the digest for ``users`` (None: every user ListUsers knows) and return the summary.

    Raises TastebudError for what stops the whole run (ListUsers failing, the sink not
    starting); everything else is per user, in the summary.
    """
    options.validate()
    summary = Summary()
    own_channel = channel is None
    if channel is None:
        channel = grpc.aio.insecure_channel(options.target)
    try:
        stub = pb_grpc.RecommenderStub(channel)
        chosen = list(users) if users is not None else await list_all_users(stub, options.timeout)
        await sink.start()
        started = time.perf_counter()
        todo: Iterable[str] = iter(chosen)
        try:
            progress = _progress(len(chosen), options.progress)

            async def worker() -> None:
                for user_id in todo:  # one shared iterator: each user is taken once
                    await _one_user(stub, user_id, options, composer, sink, summary)
                    progress(summary)
                    if on_progress is not None:
                        on_progress(len(summary.sent) + len(summary.skipped) + len(summary.failed), summary)

            try:
                await asyncio.gather(*(worker() for _ in range(min(options.concurrency, max(1, len(chosen))))))
            finally:
                progress(None)
        finally:
            summary.seconds = time.perf_counter() - started
            await sink.close()
    finally:
        if own_channel:
            await channel.close()
    return summary


def _progress(total: int, enabled: bool) -> Callable[[Summary | None], None]:
    """A tqdm bar on stderr (``None`` closes it)."""
    if not enabled:
        return lambda summary: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="user", desc="digest", dynamic_ncols=True)

    def update(summary: Summary | None) -> None:
        if summary is None:
            bar.close()
            return
        bar.update(1)
        bar.set_postfix(sent=len(summary.sent), skipped=len(summary.skipped), failed=len(summary.failed),
                        refresh=False)

    return update
