"""Screenshots of a running ``tastebud web`` for the README: ``python -m tastebud.web.screenshots``.

    tastebud web --demo --port 8080 &
    python -m tastebud.web.screenshots --url http://127.0.0.1:8080 --out docs/screenshots

Drives Debian's Chromium (``/usr/bin/chromium``, see web/setup-browser.sh) with Playwright;
never downloads a browser. Only reads pages (no button is pressed), so the demo's state does
not change except for the impressions the homepage records.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SHOTS = (  # file, user (None: signed out), path
    ("signin.png", None, "/signin"),
    ("homepage.png", "1", "/home"),
    ("homepage-music.png", "2", "/home"),
    ("onboarding.png", "readme-newcomer", "/onboarding"),
    ("search.png", "1", "/search?q=space+opera+with+robots"),
)


def launch(playwright, executable: Path = CHROMIUM):
    return playwright.chromium.launch(executable_path=str(executable), headless=True, args=CHROMIUM_ARGS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tastebud.web.screenshots", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8080", help="where tastebud web runs")
    p.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="folder for the PNGs")
    p.add_argument("--width", type=int, default=1280)
    args = p.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: run web/setup-browser.sh", file=sys.stderr)
        return 1
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    host = args.url.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
    with sync_playwright() as playwright:
        browser = launch(playwright)
        for name, user, path in SHOTS:
            context = browser.new_context(base_url=args.url, viewport={"width": args.width, "height": 900})
            if user:
                context.add_cookies([{"name": "tastebud_user", "value": user, "domain": host, "path": "/"}])
            page = context.new_page()
            response = page.goto(path)
            page.screenshot(path=str(args.out / name), full_page=True)
            print(f"{args.out / name}: {path} as {user or 'nobody'} (HTTP {response.status if response else '?'})")
            context.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
