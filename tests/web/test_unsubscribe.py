"""The weekly email's unsubscribe link, served by the website: a signed link asks, a POST (or a
mail client's one-click POST) unsubscribes through SetSubscription, and the next digest skips
the user. A link with a wrong token or no secret configured is a 400 naming the field."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator
from email import message_from_bytes
from email.policy import default as default_policy

import grpc
import pytest
from starlette.testclient import TestClient

from tastebud.cli.main import main as tastebud_main
from tastebud.digest.tokens import unsubscribe_token
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc
from tastebud.web.app import create_app

SECRET = "unsubscribe-test-secret"


def run_cli(args: list[str]) -> int:
    """``tastebud ARGS`` on a thread of its own: the browser tests' Playwright leaves an event
    loop on this one, and the digest runs its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(tastebud_main, args).result()


@pytest.fixture(scope="module")
def stub(tastebud_server) -> Iterator[pb_grpc.RecommenderStub]:
    with grpc.insecure_channel(tastebud_server.target) as channel:
        yield pb_grpc.RecommenderStub(channel)


def test_the_digest_link_unsubscribes_and_the_next_digest_skips_the_user(settings, stub, tmp_path) -> None:
    user = "7"
    stub.SetSubscription(pb.SetSubscriptionRequest(user_id=user, subscribed=True), timeout=5)
    outbox = tmp_path / "outbox"
    assert run_cli(["digest", "--target", settings.target, "--users", user, "--out", str(outbox),
                          "--secret", SECRET, "--no-record", "--no-progress",
                          "--unsubscribe-url", "http://testserver/unsubscribe"]) == 0
    (message_file,) = outbox.glob("*.eml")
    message = message_from_bytes(message_file.read_bytes(), policy=default_policy)
    link = message["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    assert link.startswith("http://testserver/unsubscribe?")
    with TestClient(create_app(dataclasses.replace(settings, unsubscribe_secret=SECRET)),
                    follow_redirects=False) as web:
        asked = web.get(link)
        assert asked.status_code == 200 and "Stop the weekly email?" in asked.text
        assert stub.GetUser(pb.GetUserRequest(user_id=user), timeout=5).subscribed  # a GET changes nothing
        done = web.post(link, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and 'data-testid="unsubscribed"' in done.text
    assert not stub.GetUser(pb.GetUserRequest(user_id=user), timeout=5).subscribed
    again = tmp_path / "again"
    assert run_cli(["digest", "--target", settings.target, "--users", user, "--out", str(again),
                          "--secret", SECRET, "--no-record", "--no-progress"]) == 0
    assert not list(again.glob("*.eml"))
    stub.SetSubscription(pb.SetSubscriptionRequest(user_id=user, subscribed=True), timeout=5)


def test_a_forged_or_unconfigured_link_is_refused_naming_the_field(settings) -> None:
    good = unsubscribe_token(SECRET, "7")
    with TestClient(create_app(dataclasses.replace(settings, unsubscribe_secret=SECRET))) as web:
        forged = web.post(f"/unsubscribe?user=8&token={good}")
        assert forged.status_code == 400 and 'data-field="token"' in forged.text
        bad_user = web.get(f"/unsubscribe?user=&token={good}")
        assert bad_user.status_code == 400 and 'data-field="user"' in bad_user.text
    with TestClient(create_app(settings)) as web:
        off = web.get(f"/unsubscribe?user=7&token={good}")
        assert off.status_code == 400 and "no unsubscribe secret" in off.text
