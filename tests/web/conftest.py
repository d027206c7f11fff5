"""Fixtures of the website tests: a real tastebud server on the demo data, and the website.

The server is built and started with the helpers tests/integration uses (``live_server``: the
real bundled model, a small demo index, a real grpc.aio server on a free port in a background
thread). The website talks to it over gRPC only, exactly as in production: through Starlette's
TestClient for the route tests, and through uvicorn on a free port for the browser tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tastebud.embed.encoder import SentenceTransformerEncoder  # noqa: E402
from tastebud.ingest.demo import write_demo_data  # noqa: E402
from tastebud.server.config import ServerConfig  # noqa: E402
from tastebud.web.app import Settings, create_app  # noqa: E402

from live_server import ONE_MEMBER_TWO_TOWER, load_demo, publish_demo_index  # noqa: E402
from web_support import TastebudServer, WebServer  # noqa: E402

DEMO_ITEMS = 600
DEMO_USERS = 150
CHROMIUM = Path(os.environ.get("TASTEBUD_CHROMIUM", "/usr/bin/chromium"))  # another path: to test the skip


@pytest.fixture(scope="session")
def web_demo_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    files = write_demo_data(tmp_path_factory.mktemp("web-demo-data"), n_items=DEMO_ITEMS, n_users=DEMO_USERS, seed=0)
    encoder = SentenceTransformerEncoder()
    root = publish_demo_index(load_demo(files), encoder, tmp_path_factory.mktemp("web-indexes"), 2,
                              ONE_MEMBER_TWO_TOWER)
    return root, encoder


@pytest.fixture(scope="session")
def tastebud_server(web_demo_index, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TastebudServer]:
    root, encoder = web_demo_index
    store = tmp_path_factory.mktemp("web-store") / "interactions.sqlite"
    server = TastebudServer(ServerConfig(index=root, port=0, store=store, workers=2), encoder)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(tastebud_server: TastebudServer) -> Settings:
    return Settings(target=tastebud_server.target, timeout=10.0)


@pytest.fixture(scope="session")
def web(settings: Settings):
    """A TestClient of the website against the real server (one event loop for the session)."""
    from starlette.testclient import TestClient

    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


@pytest.fixture(scope="session")
def web_server(settings: Settings) -> Iterator[WebServer]:
    server = WebServer(create_app(settings))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a browser Playwright downloads). Skipped when
    missing, unless TASTEBUD_REQUIRE_BROWSER=1 (then the tests fail)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run web/setup-browser.sh (apt-get install chromium)"
        if os.environ.get("TASTEBUD_REQUIRE_BROWSER") == "1":  # CI: a missing browser is a failure, not a skip
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save screenshots: a temporary folder, or TASTEBUD_WEB_SCREENSHOTS
    (``TASTEBUD_WEB_SCREENSHOTS=docs/screenshots pytest tests/web`` refreshes the README's)."""
    target = os.environ.get("TASTEBUD_WEB_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path

