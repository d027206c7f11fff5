"""The website in a real browser: Debian's Chromium driven by Playwright, against uvicorn and a
real tastebud server on the demo data. Skipped, saying why, when /usr/bin/chromium is missing.

Screenshots go to a temporary folder, or to $TASTEBUD_WEB_SCREENSHOTS (the README's come from
``TASTEBUD_WEB_SCREENSHOTS=docs/screenshots python -m pytest -q tests/web/test_browser.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
from playwright.sync_api import Page, expect  # noqa: E402

WAIT_MS = 20_000


@pytest.fixture
def page(browser, web_server):
    context = browser.new_context(base_url=web_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def page_without_js(browser, web_server):
    context = browser.new_context(base_url=web_server.url, java_script_enabled=False,
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page: Page, user_id: str) -> None:
    page.goto("/signin")
    buttons = page.locator(f'form.users button[value="{user_id}"]')
    if buttons.count():
        buttons.first.click()
    else:
        page.fill('form.newuser input[name="user_id"]', user_id)
        page.click('form.newuser button[type="submit"]')
    expect(page.get_by_test_id("current-user")).to_have_text(user_id)


def row(page: Page, key: str):
    return page.locator(f'section[data-row="{key}"]')


def row_items(page: Page, key: str) -> list[str]:
    return row(page, key).locator("article.card").evaluate_all("cards => cards.map(c => c.dataset.item)")


def test_sign_in_and_see_the_rows(page: Page, screenshot_dir: Path) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.screenshot(path=str(screenshot_dir / "signin.png"))
    sign_in(page, "1")
    expect(page).to_have_url(re.compile(r"/home$"))
    for title in ("Top picks for you", "Because you watched", "New for you", "Popular now"):
        expect(page.get_by_role("heading", name=re.compile(title))).to_be_visible()
    first = row(page, "top").locator("article.card").first
    expect(first.locator(".year")).to_have_text(re.compile(r"^\d{4}$"))
    expect(first.locator(".genres")).to_contain_text("Science Fiction")
    expect(first.locator(".reason")).not_to_be_empty()
    page.screenshot(path=str(screenshot_dir / "homepage.png"), full_page=True)


def test_mark_watched_and_the_rows_change_in_place(page: Page, screenshot_dir: Path) -> None:
    sign_in(page, "12")
    before = row_items(page, "top")
    card = row(page, "top").locator("article.card").first
    title = card.locator(".title").inner_text()
    page.evaluate("window.__marker = 'same page'")  # survives only a swap, not a reload
    card.get_by_role("button", name="Mark watched").click()
    expect(page.locator("#flash")).to_contain_text(f"Watched: {title}")
    expect(page.get_by_role("heading", name=f"Because you watched {title}")).to_be_visible()
    after = row_items(page, "top")
    assert before[0] not in after and after != before
    assert page.evaluate("window.__marker") == "same page", "the page reloaded instead of swapping the rows"
    page.screenshot(path=str(screenshot_dir / "homepage-after-watched.png"), full_page=True)


def test_rate_an_item(page: Page) -> None:
    sign_in(page, "13")
    card = row(page, "popular").locator("article.card").first
    item = card.get_attribute("data-item")
    card.locator("select").select_option("5")
    card.get_by_role("button", name="Rate").click()
    expect(page.locator("#flash")).to_contain_text("Rated 5 of 5")
    expect(page.locator(f'#rows article[data-item="{item}"]')).to_have_count(0)


def test_search(page: Page, screenshot_dir: Path) -> None:
    sign_in(page, "14")
    page.get_by_role("searchbox", name="Search").first.fill("haunted house horror")
    page.get_by_role("button", name="Search").first.click()
    expect(page).to_have_url(re.compile(r"/search\?q=haunted"))
    expect(page.get_by_role("heading", name=re.compile("Results for"))).to_be_visible()
    cards = page.locator("#results article.card")
    expect(cards.first).to_be_visible()
    assert any("Horror" in g for g in page.locator("#results .genres").all_inner_texts()[:5])
    page.screenshot(path=str(screenshot_dir / "search.png"), full_page=True)
    cards.first.get_by_role("button", name="Mark watched").click()
    expect(page.locator("#results article.card.done")).to_have_count(1)


def test_an_empty_search_is_a_400_page_naming_the_box(page: Page) -> None:
    sign_in(page, "14")
    response = page.goto("/search?q=")
    assert response.status == 400
    expect(page.locator("[data-field=q]")).to_be_visible()


def test_onboard_a_new_user(page: Page, screenshot_dir: Path) -> None:
    sign_in(page, "browser-newcomer")
    expect(page).to_have_url(re.compile(r"/onboarding$"))
    expect(page.get_by_role("heading", name="Welcome, browser-newcomer")).to_be_visible()
    page.get_by_label("Horror").check()
    page.get_by_label("Comedy").check()
    page.screenshot(path=str(screenshot_dir / "onboarding.png"), full_page=True)
    page.get_by_role("button", name="Show my homepage").click()
    expect(page).to_have_url(re.compile(r"/home$"))
    genres = row(page, "top").locator(".genres").all_inner_texts()
    assert genres and all("Horror" in g or "Comedy" in g for g in genres), genres
    expect(page.get_by_role("heading", name=re.compile("Because you watched"))).to_have_count(0)
    # The first view moves the user up the ladder: a history row appears.
    row(page, "top").locator("article.card").first.get_by_role("button", name="Mark watched").click()
    expect(page.get_by_role("heading", name=re.compile("Because you watched"))).to_be_visible()


def test_without_javascript_the_forms_still_work(page_without_js: Page) -> None:
    page = page_without_js
    sign_in(page, "15")
    before = row_items(page, "top")
    title = row(page, "top").locator("article.card .title").first.inner_text()
    row(page, "top").locator("article.card").first.get_by_role("button", name="Mark watched").click()
    expect(page).to_have_url(re.compile(r"/home$"))
    expect(page.get_by_role("heading", name=f"Because you watched {title}")).to_be_visible()
    assert before[0] not in row_items(page, "top")
