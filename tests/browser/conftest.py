"""Browser tests: the real app under uvicorn on a free port of 127.0.0.1 (a SQLite file, a
manual clock), driven by Playwright through Debian's Chromium. Every page fails its test on a
request to any other address and on any console error."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from shequn.clock import ManualClock
from shequn.config import Settings
from shequn.console.delivery import CodeMessage, set_code_delivery
from shequn.db import Database
from shequn.entrypoints.app import create_app
from shequn.schema import upgrade_database
from tests.browser.world import Brand, build_brand

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

playwright_api = pytest.importorskip("playwright.sync_api")

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Site:
    url: str
    db: Database
    clock: ManualClock
    brand: Brand
    other: Brand
    codes: list[CodeMessage] = field(default_factory=list)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    path = tmp_path_factory.mktemp("browser") / "shequn-browser.db"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    db = Database.from_url(url, pool_size=8)
    clock = ManualClock()
    brand = build_brand(db, clock, "示例品牌")
    other = build_brand(db, clock, "别家品牌")
    app = create_app(
        Settings(environment="test", database_url=url, api_key_cache_seconds=0),
        clock=clock,
        db=db,
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    codes: list[CodeMessage] = []
    before = set_code_delivery(codes.append)
    try:
        yield Site(f"http://127.0.0.1:{port}", db, clock, brand, other, codes)
    finally:
        set_code_delivery(before)
        server.should_exit = True
        thread.join(timeout=10)
        db.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        yield launched
        launched.close()


class Watch:
    """What a page did that a test must not allow: requests elsewhere, console errors."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.foreign: list[str] = []
        self.errors: list[str] = []

    def route(self, route: Any) -> None:
        url = route.request.url
        if url == self.origin or url.startswith((self.origin + "/", "data:")):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def page_error(self, error: Any) -> None:
        self.errors.append(str(error))


def open_page(browser: Any, site: Site, **context_options: Any) -> tuple[Any, Any, Watch]:
    context = browser.new_context(**context_options)
    watch = Watch(site.url)
    context.route("**/*", watch.route)
    page = context.new_page()
    page.on("console", watch.console)
    page.on("pageerror", watch.page_error)
    page.on("dialog", lambda dialog: dialog.accept())
    page.set_default_timeout(15_000)
    return context, page, watch


@pytest.fixture
def desk(browser: Any, site: Site) -> Iterator[Any]:
    """A desktop page (1280 × 860), English first unless the test switches."""
    context, page, watch = open_page(
        browser, site, viewport={"width": 1280, "height": 860}, locale="en-US"
    )
    yield page
    context.close()
    assert watch.foreign == [], watch.foreign
    assert watch.errors == [], watch.errors


@pytest.fixture
def phone(browser: Any, site: Site) -> Iterator[Any]:
    """A phone-sized page (375 × 740, touch), Chinese first."""
    context, page, watch = open_page(
        browser,
        site,
        viewport={"width": 375, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    yield page
    context.close()
    assert watch.foreign == [], watch.foreign
    assert watch.errors == [], watch.errors


def shot(page: Any, name: str) -> None:
    """A screenshot for the README, kept small (the visible part of the page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)
