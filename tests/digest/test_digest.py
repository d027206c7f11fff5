"""``tastebud digest`` end to end: a real tastebud server on the demo data, a real SMTP server
on loopback (aiosmtpd), and the received messages checked one by one.

The users are split between the tests (the server and its store are shared by the session and
the digest records impressions), so the order in which tests run does not matter.
"""

from __future__ import annotations

import asyncio
import json
import time
from email import message_from_bytes, policy
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tastebud.cli.main import main
from tastebud.digest.compose import Composer, DigestStyle
from tastebud.digest.deliver import EmlOutbox, SmtpSender
from tastebud.digest.run import DigestOptions, send_digests
from tastebud.digest.tokens import verify_unsubscribe_token
from tastebud.v1 import recommender_pb2 as pb

from live_server import all_user_ids

SECRET = "digest-test-secret"
OPTIONS = DigestOptions(k=8, diversity=0.3, timeout=10.0, concurrency=4, progress=False)


def _options(server) -> DigestOptions:
    return DigestOptions(**{**OPTIONS.__dict__, "target": server.target})


def _ids(response: pb.RecommendResponse) -> list[str]:
    return [i.item_id for i in response.items]


def _picks_of(message) -> list[str]:
    return [i.strip() for i in str(message["X-Tastebud-Picks"]).split(",") if i.strip()]


def _send(server, users, sink, **changes):
    options = DigestOptions(**{**_options(server).__dict__, **changes})
    return asyncio.run(send_digests(options, users, Composer(DigestStyle(secret=SECRET)), sink))


class _HtmlText(HTMLParser):
    """The text and the links of an HTML body, entities decoded."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.links: list[str] = []
        self.feed(html)
        self.close()
        self.text = " ".join(" ".join(self.chunks).split())

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    def handle_starttag(self, tag, attrs) -> None:
        self.links += [value for name, value in attrs if tag == "a" and name == "href"]


def _check_message(message, user: str, expected: pb.RecommendResponse) -> None:
    """Valid multipart/alternative with text + html, addressed to the user, carrying exactly
    the picks Recommend gives for the same request, titles and reasons in both bodies."""
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert not message.defects and all(not p.defects for p in message.iter_parts())
    assert message["To"] == f"{user}@example.com" and message["X-Tastebud-User"] == user
    assert _picks_of(message) == _ids(expected)
    text = message.get_body(("plain",)).get_content()
    html = _HtmlText(message.get_body(("html",)).get_content())
    position = -1
    for item in expected.items:
        assert item.title in text and item.title in html.text
        assert item.reason[1:] in text and item.reason[1:] in html.text  # first letter capitalised
        assert text.index(item.title, position + 1) > position  # in the order Recommend gave
        position = text.index(item.title, position + 1)
    link = next(p.strip("<>") for p in message["List-Unsubscribe"].split(", ") if p.startswith("<http"))
    query = parse_qs(urlsplit(link).query)
    assert query["user"] == [user] and verify_unsubscribe_token(SECRET, user, query["token"][0])
    assert "mailto:" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in text and link in html.links


def test_smtp_one_message_per_user_with_their_own_picks(digest_server, stub, smtp, demo_history):
    handler, port = smtp
    users = [str(u) for u in range(1, 21)]
    options = _options(digest_server)
    now = time.time()
    # what "the homepage" showed this week: impressions of some users' current top picks
    # (two days ago), and one shown 8 days ago, which is outside the window
    shown: dict[str, set[str]] = {}
    for user in users[:10]:
        top = _ids(stub.Recommend(options.request_for(user), timeout=10))[:4]
        shown[user] = set(top)
        stub.RecordInteractions(pb.RecordInteractionsRequest(interactions=[
            pb.Interaction(user_id=user, item_id=i, event="impression", timestamp=now - 2 * 86400) for i in top]),
            timeout=10)
    # users who unsubscribed get nothing
    unsubscribed = {"3", "17"}
    for user in unsubscribed:
        assert not stub.SetSubscription(pb.SetSubscriptionRequest(user_id=user, subscribed=False),
                                        timeout=10).subscribed
    expected = {u: stub.Recommend(options.request_for(u), timeout=10) for u in users if u not in unsubscribed}
    lengths = {u: stub.GetUser(pb.GetUserRequest(user_id=u), timeout=10).history_length for u in users}

    summary = _send(digest_server, users, SmtpSender("127.0.0.1", port, pool_size=4))

    received = handler.take()
    assert summary.ok, summary.report()
    assert set(summary.skipped) == unsubscribed and all(v == "unsubscribed" for v in summary.skipped.values())
    assert sorted(summary.sent) == sorted(expected)
    by_user = {}
    for r in received:
        assert r.rcpt_tos and len(r.rcpt_tos) == 1 and r.mail_from == "digest@example.com"
        message = r.message
        assert message["X-Tastebud-User"] not in by_user, "one message per user"
        by_user[message["X-Tastebud-User"]] = message
    assert sorted(by_user) == sorted(expected)  # one each; none to the unsubscribed
    for r in received:
        assert r.rcpt_tos == [str(r.message["To"])]
    for user, message in by_user.items():
        _check_message(message, user, expected[user])
        picks = set(_picks_of(message))
        assert len(picks) == OPTIONS.k
        assert not picks & demo_history.get(user, set()), "a seen item in the digest"
        history = stub.GetUser(pb.GetUserRequest(user_id=user, history_limit=1000), timeout=10).history
        assert not picks & {h.item_id for h in history}
        assert not picks & shown.get(user, set()), "an item shown this week is in the digest"
        assert summary.sent[user] == _picks_of(message)
    # the digest recorded what it showed: the same request now leaves all of it out
    for user, message in by_user.items():
        again = set(_ids(stub.Recommend(options.request_for(user), timeout=10)))
        assert not again & set(_picks_of(message))
    # impressions are not history: nobody's history grew
    assert lengths == {u: stub.GetUser(pb.GetUserRequest(user_id=u), timeout=10).history_length for u in users}


def test_a_failing_user_does_not_stop_the_others(digest_server, stub, smtp, capsys):
    handler, port = smtp
    handler.refuse.add("24@example.com")  # the SMTP server refuses this recipient
    options = _options(digest_server)
    users = ["21", "bad user", "22", "24", "tab\tid", "23"]  # "tab\tid": the server refuses the id
    before_24 = stub.Recommend(options.request_for("24"), timeout=10)
    expected = {u: stub.Recommend(options.request_for(u), timeout=10) for u in ("21", "22", "23")}

    code = main(["digest", "--target", digest_server.target, "--users", ",".join(users),
                 "--smtp", f"127.0.0.1:{port}", "--secret", SECRET, "--k", str(OPTIONS.k),
                 "--diversity", str(OPTIONS.diversity), "--timeout", "10", "--no-progress", "--json"])

    assert code == 1  # some failed
    summary = json.loads(capsys.readouterr().out)
    assert (summary["sent"], summary["skipped"], summary["failed"]) == (3, 0, 3)
    assert summary["failed_users"]["tab\tid"].startswith("GetUser failed: INVALID_ARGUMENT: user_id")
    assert "bad address 'bad user@example.com'" in summary["failed_users"]["bad user"]
    assert "550" in summary["failed_users"]["24"] and "refused the recipient" in summary["failed_users"]["24"]
    received = {r.message["X-Tastebud-User"]: r.message for r in handler.take()}
    assert sorted(received) == ["21", "22", "23"]
    for user, message in received.items():
        _check_message(message, user, expected[user])
    # nothing was recorded for the user whose message was refused
    assert _ids(stub.Recommend(options.request_for("24"), timeout=10)) == _ids(before_24)


def test_an_unreachable_server_fails_each_user_with_the_status(digest_server, smtp):
    """RPC errors are per user: with no server at the target every user fails with the RPC's
    status code, nothing is sent, and the run still ends with its summary."""
    handler, port = smtp
    options = DigestOptions(**{**_options(digest_server).__dict__, "target": "127.0.0.1:1", "timeout": 1.0})
    summary = asyncio.run(send_digests(options, ["30", "31"], Composer(DigestStyle(secret=SECRET)),
                                       SmtpSender("127.0.0.1", port)))
    assert not summary.sent and set(summary.failed) == {"30", "31"}
    assert all(why.startswith("GetUser failed: UNAVAILABLE") or "DEADLINE_EXCEEDED" in why
               for why in summary.failed.values()), summary.failed
    assert handler.take() == []


def test_eml_outbox_writes_one_parseable_file_per_user(digest_server, stub, tmp_path):
    options = _options(digest_server)
    users = ["41", "42", "43"]
    expected = {u: stub.Recommend(options.request_for(u), timeout=10) for u in users}
    out = tmp_path / "outbox"
    code = main(["digest", "--target", digest_server.target, "--users", ",".join(users), "--out", str(out),
                 "--secret", SECRET, "--k", str(OPTIONS.k), "--diversity", str(OPTIONS.diversity),
                 "--timeout", "10", "--no-progress"])
    assert code == 0
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["41.eml", "42.eml", "43.eml"]
    for f in files:
        message = message_from_bytes(f.read_bytes(), policy=policy.default)
        _check_message(message, f.stem, expected[f.stem])


def test_users_all_pages_through_list_users(digest_server, stub, tmp_path, capsys, monkeypatch):
    """``--users all`` (a preview: --no-record) writes one file per listed, subscribed user."""
    listed = all_user_ids(stub, page_size=1000)
    assert {str(u) for u in range(1, 261)} <= set(listed)
    monkeypatch.setenv("TASTEBUD_DIGEST_SECRET", SECRET)
    out = tmp_path / "outbox"
    before = stub.Recommend(_options(digest_server).request_for("250"), timeout=10)
    code = main(["digest", "--target", digest_server.target, "--users", "all", "--out", str(out), "--no-record",
                 "--k", "3", "--json", "--no-progress"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    unsubscribed = {u for u in listed
                    if not stub.GetUser(pb.GetUserRequest(user_id=u), timeout=10).subscribed}
    assert set(summary["skipped_users"]) == unsubscribed
    assert summary["sent"] == len(listed) - len(unsubscribed)
    assert sorted(f.stem for f in out.iterdir()) == sorted(set(listed) - unsubscribed)
    # --no-record: nothing was recorded
    assert _ids(stub.Recommend(_options(digest_server).request_for("250"), timeout=10)) == _ids(before)


def test_throughput_to_the_smtp_sink(digest_server, smtp, record_property, capsys):
    """200 users' digests through SMTP; the rate is reported, not asserted."""
    handler, port = smtp
    users = [str(u) for u in range(61, 261)]
    summary = _send(digest_server, users, SmtpSender("127.0.0.1", port, pool_size=8), concurrency=8, k=10)
    assert summary.ok and len(summary.sent) == 200 and len(handler.take()) == 200
    rate = len(summary.sent) / summary.seconds
    record_property("digest_messages_per_second", rate)
    with capsys.disabled():
        print(f"\ndigest throughput: {len(summary.sent)} messages to the SMTP sink in {summary.seconds:.2f} s = "
              f"{rate:.1f} messages/s (k=10, diversity 0.3, 8 users in flight)")
