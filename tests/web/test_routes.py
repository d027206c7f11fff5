"""The website's routes through Starlette's TestClient, against a real tastebud server.

Each test signs in as its own user, so what one records does not move another's rows.
"""

from __future__ import annotations

import re
import socket

import grpc
import pytest
from starlette.testclient import TestClient

from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc
from tastebud.web.app import Settings, Taste, create_app
from tastebud.web.labels import Labels

from live_server import free_port

ROW_TITLES = ("Top picks for you", "Because you watched", "New for you", "Popular now")


def sign_in(web: TestClient, user_id: str) -> None:
    response = web.post("/signin", data={"user_id": user_id})
    assert response.status_code == 303 and response.headers["location"] == "/home"
    assert web.cookies.get("tastebud_user") == user_id


def cards(html: str, row: str | None = None) -> list[str]:
    """Item ids of the cards on a page (or in one row: its data-row key)."""
    if row is not None:
        match = re.search(rf'data-row="{row}".*?</section>', html, re.S)
        html = match.group(0) if match else ""
    return re.findall(r'<article class="card[^"]*" data-item="([^"]+)"', html)


def row_html(html: str, row: str) -> str:
    match = re.search(rf'data-row="{row}".*?</section>', html, re.S)
    assert match, f"no row {row}"
    return match.group(0)


@pytest.fixture(scope="module")
def stub(tastebud_server):
    with grpc.insecure_channel(tastebud_server.target) as channel:
        yield pb_grpc.RecommenderStub(channel)


def test_root_and_home_send_a_stranger_to_sign_in(web: TestClient) -> None:
    web.cookies.clear()
    assert web.get("/").headers["location"] == "/signin"
    assert web.get("/home").headers["location"] == "/signin"


def test_sign_in_page_lists_the_users_from_list_users(web: TestClient) -> None:
    web.cookies.clear()
    page = web.get("/signin")
    assert page.status_code == 200
    assert 'name="user_id" value="1"' in page.text and 'name="user_id" value="10"' in page.text
    assert "Start as a new user" in page.text
    assert "More users" in page.text  # 150 users, 60 a page
    token = re.search(r'href="/signin\?page=([^"]+)"', page.text).group(1)
    second = web.get(f"/signin?page={token}")
    assert second.status_code == 200 and cards(second.text) == []
    assert set(re.findall(r'value="(\d+)" data-testid', second.text)).isdisjoint(
        re.findall(r'value="(\d+)" data-testid', page.text))


def test_homepage_has_the_four_rows_with_title_year_genres_and_reason(web: TestClient) -> None:
    sign_in(web, "1")
    page = web.get("/home")
    assert page.status_code == 200
    for title in ROW_TITLES:
        assert title in page.text
    for key in ("top", "because", "new", "popular"):
        assert cards(page.text, key), f"row {key} is empty"
    top = row_html(page.text, "top")
    assert re.search(r'<span class="year">\d{4}</span>', top)
    assert "Science Fiction" in top  # user 1 watches only science fiction
    assert re.search(r'<p class="reason">[^<]+</p>', top)
    ids = cards(page.text)
    assert len(ids) == len(set(ids)), "an item appears in two rows"


def test_because_you_watched_names_the_most_recent_history_item(web: TestClient, stub) -> None:
    sign_in(web, "4")
    profile = stub.GetUser(pb.GetUserRequest(user_id="4", history_limit=1), timeout=10)
    page = web.get("/home")
    assert f"Because you watched {profile.history[0].title}" in page.text


def test_new_for_you_holds_only_items_of_the_last_two_years(web: TestClient, stub) -> None:
    sign_in(web, "5")
    newest = stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=10).newest_year
    years = [int(y) for y in re.findall(r'<span class="year">(\d+)</span>', row_html(web.get("/home").text, "new"))]
    assert years and all(y >= newest - 1 for y in years)


def test_the_homepage_records_impressions_of_every_card(web: TestClient, stub) -> None:
    sign_in(web, "6")
    shown = set(cards(web.get("/home").text))
    assert shown
    # Impressions are kept apart from the history: the same user's plain answer still has them,
    # and a request leaving out what was shown in the last hour has none of them.
    again = stub.Recommend(pb.RecommendRequest(user_id="6", k=50, exclude_shown_within_seconds=3600), timeout=10)
    assert shown.isdisjoint(i.item_id for i in again.items)
    profile = stub.GetUser(pb.GetUserRequest(user_id="6", history_limit=1000), timeout=10)
    assert shown.isdisjoint(h.item_id for h in profile.history)


def test_marking_watched_without_js_records_a_view_and_redirects_to_changed_rows(web: TestClient, stub) -> None:
    sign_in(web, "7")
    before = web.get("/home").text
    item = cards(before, "top")[0]
    title = re.search(rf'data-item="{item}">\s*<h3 class="title">([^<]+)</h3>', before).group(1)
    response = web.post("/interact", data={"item_id": item, "action": "done", "title": title, "next": "/home"})
    assert response.status_code == 303 and response.headers["location"] == "/home"
    profile = stub.GetUser(pb.GetUserRequest(user_id="7", history_limit=1), timeout=10)
    assert profile.history[0].item_id == item
    after = web.get("/home").text
    assert item not in cards(after)
    assert f"Because you watched {title}" in after.replace("&#39;", "'").replace("&amp;", "&")


def test_marking_watched_with_htmx_returns_the_new_rows(web: TestClient) -> None:
    sign_in(web, "8")
    item = cards(web.get("/home").text, "top")[0]
    response = web.post("/interact", data={"item_id": item, "action": "done", "title": "x", "view": "rows"},
                        headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="rows">') and "<html" not in response.text
    assert "Top picks for you" in response.text and item not in cards(response.text)


def test_rating_records_a_rating_event(web: TestClient, stub) -> None:
    sign_in(web, "9")
    item = cards(web.get("/home").text, "popular")[0]
    response = web.post("/interact", data={"item_id": item, "action": "rate", "rating": "5"})
    assert response.status_code == 303
    profile = stub.GetUser(pb.GetUserRequest(user_id="9", history_limit=1), timeout=10)
    assert profile.history[0].item_id == item


@pytest.mark.parametrize("data, field", [
    ({"item_id": "1", "action": "rate", "rating": "11"}, "rating"),
    ({"item_id": "1", "action": "rate", "rating": "0"}, "rating"),
    ({"item_id": "1", "action": "rate", "rating": "four"}, "rating"),
    ({"item_id": "", "action": "done"}, "item_id"),
    ({"item_id": "no-such-item", "action": "done"}, "item_id"),
    ({"item_id": "1", "action": "dance"}, "action"),
])
def test_a_bad_card_form_value_is_a_400_page_naming_the_field(web: TestClient, data, field) -> None:
    sign_in(web, "10")
    response = web.post("/interact", data=data)
    assert response.status_code == 400
    assert f'data-field="{field}"' in response.text and f"<strong>{field}</strong>" in response.text
    assert "Traceback" not in response.text


def test_a_bad_value_from_htmx_goes_into_the_flash_area(web: TestClient) -> None:
    sign_in(web, "10")
    response = web.post("/interact", data={"item_id": "1", "action": "rate", "rating": "11"},
                        headers={"HX-Request": "true"})
    assert response.status_code == 400 and response.headers["HX-Retarget"] == "#flash"
    assert "<strong>rating</strong>" in response.text and "<html" not in response.text


@pytest.mark.parametrize("query, field", [("q=", "q"), ("q=%20%20", "q"), ("q=" + "x" * 201, "q")])
def test_a_bad_search_is_a_400_naming_the_box(web: TestClient, query, field) -> None:
    sign_in(web, "11")
    response = web.get(f"/search?{query}")
    assert response.status_code == 400 and f'data-field="{field}"' in response.text


def test_search_finds_an_exact_title_first(web: TestClient, stub) -> None:
    sign_in(web, "11")
    wanted = stub.Recommend(pb.RecommendRequest(user_id="", k=5), timeout=10).items[3]
    page = web.get("/search", params={"q": wanted.title})
    assert page.status_code == 200
    assert cards(page.text)[0] == wanted.item_id
    assert "Mark watched" in page.text


@pytest.mark.parametrize("user_id", ["", "a b", "x" * 129, "<script>"])
def test_a_bad_user_id_on_sign_in_is_a_400(web: TestClient, user_id) -> None:
    response = web.post("/signin", data={"user_id": user_id})
    assert response.status_code == 400 and 'data-field="user_id"' in response.text


def test_a_new_user_is_onboarded_and_the_first_homepage_follows_the_picked_genres(web: TestClient, stub) -> None:
    sign_in(web, "newcomer-horror")
    assert web.get("/home").headers["location"] == "/onboarding"
    page = web.get("/onboarding")
    assert page.status_code == 200
    assert 'value="Horror"' in page.text and 'value="Jazz"' in page.text
    response = web.post("/onboarding", data={"genres": ["Horror"], "taste": "", "action": "save"})
    assert response.status_code == 303 and response.headers["location"] == "/home"
    home = web.get("/home")
    assert home.status_code == 200
    top = row_html(home.text, "top")
    genres = re.findall(r'<span class="genres">([^<]+)</span>', top)
    assert genres and all("Horror" in g for g in genres)
    assert "Because you watched" not in home.text  # no history yet


def test_free_text_taste_leads_a_new_users_picks(web: TestClient) -> None:
    sign_in(web, "newcomer-jazz")
    response = web.post("/onboarding", data={"taste": "smooth late-night jazz albums", "action": "save"})
    assert response.status_code == 303
    top = row_html(web.get("/home").text, "top")
    genres = re.findall(r'<span class="genres">([^<]+)</span>', top)
    assert sum("Jazz" in g for g in genres) >= len(genres) // 2, genres


def test_skipping_onboarding_gives_the_popular_homepage(web: TestClient) -> None:
    sign_in(web, "newcomer-skip")
    assert web.post("/onboarding", data={"action": "skip"}).status_code == 303
    page = web.get("/home")
    assert page.status_code == 200 and cards(page.text, "top")


@pytest.mark.parametrize("data, field", [
    ({"genres": ["Not A Genre"], "action": "save"}, "genres"),
    ({"action": "save"}, "genres"),
    ({"taste": "y" * 301, "action": "save"}, "taste"),
])
def test_bad_onboarding_values_are_400s(web: TestClient, data, field) -> None:
    sign_in(web, "newcomer-bad")
    response = web.post("/onboarding", data=data)
    assert response.status_code == 400 and f'data-field="{field}"' in response.text


def test_unknown_pages_and_methods_are_plain_pages(web: TestClient) -> None:
    missing = web.get("/nope")
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert web.get("/interact").status_code == 405
    assert web.get("/static/htmx.min.js").status_code == 200


def test_music_labels(settings: Settings, tastebud_server) -> None:
    music = Settings(target=settings.target, timeout=settings.timeout, labels=Labels.preset("listened"))
    with TestClient(create_app(music), follow_redirects=False) as client:
        sign_in(client, "2")  # user 2 plays only jazz
        page = client.get("/home").text
        assert "Because you listened to" in page and "Mark listened" in page and "Mark watched" not in page


def test_labels_per_kind_from_toml(tmp_path) -> None:
    path = tmp_path / "labels.toml"
    path.write_text('preset = "watched"\nnouns = "films and albums"\n[kinds]\nalbum = "listened"\n')
    labels = Labels.from_toml(path)
    assert labels.words.nouns == "films and albums" and labels.for_kind("album").event == "play"
    assert labels.for_kind("movie").action == "Mark watched"
    path.write_text('colour = "red"\n')
    with pytest.raises(ValueError, match="colour"):
        Labels.from_toml(path)


def test_a_refused_row_shows_a_banner_and_the_rest_of_the_page_renders(settings: Settings) -> None:
    # A taste cookie whose genre filter names an attribute the catalog does not have: the
    # real server refuses that one Recommend (INVALID_ARGUMENT); the other rows still come.
    odd = Settings(target=settings.target, timeout=settings.timeout, genre_attribute="colour")
    with TestClient(create_app(odd), follow_redirects=False) as client:
        sign_in(client, "newcomer-odd")
        client.cookies.set("tastebud_taste", Taste("newcomer-odd", ["red"], "").encode())
        page = client.get("/home")
        assert page.status_code == 200
        assert "refused the request" in row_html(page.text, "top")
        assert cards(page.text, "popular")


def test_server_down_the_page_says_so_with_a_503(settings: Settings) -> None:
    down = Settings(target=f"127.0.0.1:{free_port()}", timeout=1.0)
    with TestClient(create_app(down), follow_redirects=False) as client:
        sign_in(client, "1")
        page = client.get("/home")
        assert page.status_code == 503
        assert "not reachable" in page.text and "Top picks for you" in page.text and "Traceback" not in page.text
        signin = client.get("/signin")
        assert signin.status_code == 503 and "Start as a new user" in signin.text
        search = client.get("/search?q=space")
        assert search.status_code == 503 and "not reachable" in search.text
        record = client.post("/interact", data={"item_id": "1", "action": "done"})
        assert record.status_code == 503 and "Not recorded" in record.text


def test_server_slow_the_page_says_so_with_a_503() -> None:
    # A listener that accepts connections and never answers: every call runs into its deadline.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        slow = Settings(target=f"127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        with TestClient(create_app(slow), follow_redirects=False) as client:
            sign_in(client, "1")
            page = client.get("/home")
            assert page.status_code == 503 and "slow to answer" in page.text


def test_demo_labels_follow_each_items_kind(settings: Settings) -> None:
    from pathlib import Path

    import tastebud.web

    labels = Labels.from_toml(Path(tastebud.web.__file__).with_name("demo-labels.toml"))
    mixed = Settings(target=settings.target, timeout=settings.timeout, labels=labels)
    with TestClient(create_app(mixed), follow_redirects=False) as client:
        sign_in(client, "2")  # user 2 plays only jazz albums
        jazz = client.get("/home").text
        assert "Because you listened to" in jazz and "Mark listened" in jazz
        sign_in(client, "3")  # user 3 watches only horror films
        horror = client.get("/home").text
        assert "Because you watched" in horror
        top = row_html(horror, "top")
        assert "Mark watched" in top and "Mark listened" not in top


def test_a_bad_page_token_on_sign_in_is_a_400(web: TestClient) -> None:
    response = web.get("/signin?page=not-a-token")
    assert response.status_code == 400 and 'data-field="page"' in response.text
