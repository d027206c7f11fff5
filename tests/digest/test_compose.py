"""The message itself, without a server: MIME structure, headers, escaping, tokens, addresses."""

from __future__ import annotations

from email import message_from_bytes, policy
from urllib.parse import parse_qs, urlsplit

import pytest

from tastebud.digest.compose import AddressError, Composer, DigestStyle, Pick, address_for
from tastebud.digest.deliver import eml_name
from tastebud.digest.run import parse_users
from tastebud.digest.tokens import unsubscribe_token, unsubscribe_url, verify_unsubscribe_token
from tastebud.errors import InvalidInputError
from tastebud.v1 import recommender_pb2 as pb


def _picks() -> list[Pick]:
    items = [pb.RecommendedItem(item_id="7", title="Alien <Director's Cut> & more", year=1979,
                                reason="because you watched The Thing", because_item_id="3",
                                attributes=[pb.AttributeValues(attribute="genres", values=["Horror", "Sci-Fi"])]),
             pb.RecommendedItem(item_id="9", title="Blue Train", year=0, reason="popular right now")]
    return [Pick.from_proto(i, "watched") for i in items]


def test_message_is_multipart_alternative_with_text_and_html():
    composer = Composer(DigestStyle(secret="s3cret"))
    raw = composer.compose("42", _picks(), pb.UserProfile(user_id="42", known=True, subscribed=True,
                                                          history_length=12)).as_bytes()
    message = message_from_bytes(raw, policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["To"] == "42@example.com"
    assert message["Subject"].startswith("Your picks this week: Alien")
    assert message["Message-ID"] and message["Date"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Alien <Director's Cut> & more (1979)" in text and "Because you watched The Thing" in text
    assert "Alien &lt;Director&#39;s Cut&gt; &amp; more" in html and "<Director" not in html  # escaped
    assert "Horror, Sci-Fi" in html and "12 titles you watched" in text
    assert text.index("Alien") < text.index("Blue Train")
    # the unsubscribe link: in both bodies and in the headers, with a token that verifies
    link = next(part.strip("<>") for part in message["List-Unsubscribe"].split(", ") if part.startswith("<http"))
    assert link.startswith("http://localhost:8080/unsubscribe?")
    query = parse_qs(urlsplit(link).query)
    assert query["user"] == ["42"] and verify_unsubscribe_token("s3cret", "42", query["token"][0])
    assert not verify_unsubscribe_token("other", "42", query["token"][0])
    assert "<mailto:unsubscribe@example.com?subject=unsubscribe%2042%20" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in text and link.replace("&", "&amp;") in html
    assert message["X-Tastebud-Picks"] == "7, 9"


def test_label_changes_the_wording():
    item = pb.RecommendedItem(item_id="1", title="Kind of Blue", reason="because you watched Blue Train")
    pick = Pick.from_proto(item, "listened")
    assert pick.reason == "because you listened to Blue Train"
    composer = Composer(DigestStyle(secret="s", label="listened"))
    message = composer.compose("2", [pick], pb.UserProfile(known=True, subscribed=True, history_length=3))
    assert "3 titles you listened to" in message.get_body(("plain",)).get_content()


def test_templates_folder_overrides_the_bundled_ones(tmp_path):
    (tmp_path / "subject.txt.j2").write_text("Hello {{ user_id }}: {{ picks|length }} picks\n")
    message = Composer(DigestStyle(secret="s", templates=tmp_path)).compose("5", _picks())
    assert message["Subject"] == "Hello 5: 2 picks"
    assert "Alien" in message.get_body(("plain",)).get_content()  # the other templates: bundled


def test_addresses_come_from_the_template_and_are_checked():
    assert address_for("{user}@example.com", "42") == "42@example.com"
    assert address_for("user+{user}@mail.example.org", "a.b") == "user+a.b@mail.example.org"
    for bad in ("bad user", "x\r\nBcc: evil@example.org", "a@b", "", "..", "é"):
        with pytest.raises(AddressError):
            address_for("{user}@example.com", bad)
    with pytest.raises(InvalidInputError, match="must contain"):
        Composer(DigestStyle(secret="s", address_template="someone@example.com"))
    with pytest.raises(InvalidInputError, match="secret"):
        Composer(DigestStyle(secret=""))


def test_tokens_and_links():
    token = unsubscribe_token("k", "42")
    assert len(token) == 43 and token == unsubscribe_token(b"k", "42") and token != unsubscribe_token("k", "43")
    url = unsubscribe_url("https://example.com/u?src=mail&user=x", "4 2", token)
    assert parse_qs(urlsplit(url).query) == {"src": ["mail"], "user": ["4 2"], "token": [token]}


def test_users_flag_and_file_names():
    assert parse_users("all") is None
    assert parse_users("42, 43,42,,") == ["42", "43"]
    with pytest.raises(InvalidInputError):
        parse_users(" , ")
    assert eml_name("42") == "42.eml" and eml_name("../x") == "..%2Fx.eml"
