"""A screenshot of every workspace page in both languages, on a desk and on a phone.

Saved as test-artifacts/screenshots/<page>-<lang>-<device>.png (CI keeps test-artifacts/,
nothing is committed). The pages are the ones the zh/en page walk reads, so a new page is
photographed too.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm.core.db import make_engine
from crm.core.settings import get_settings
from tests.entrypoints.test_browser import SHOTS, _free_port, _need_browser
from tests.entrypoints.test_browser import browser as browser  # the shared Chromium fixture
from tests.entrypoints.test_web_words import SCREENS, page_routes, page_urls
from tests.helpers import queue_seed as seed
from tests.helpers import workspace_world

pytestmark = pytest.mark.browser

SECRET = "browser-test-secret-0123456789"
DEVICES = {"desktop": 1280, "phone": 390}


@pytest.fixture
def site(tmp_path: Path, sqlite_template: Path) -> Iterator[dict]:
    """The web app under uvicorn, on a SQLite database with a working week in it."""
    _need_browser()
    import uvicorn

    from flows.web.app import create_app

    db = tmp_path / "pages.db"
    shutil.copyfile(sqlite_template, db)
    engine = make_engine(f"sqlite:///{db}")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = get_settings(secret_key=SECRET, public_base_url=base)
    world = workspace_world.build(engine, settings, tmp_path)
    app = create_app(settings, engine)
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield {"base": base, "app": app, "settings": settings, **world}
    finally:
        srv.should_exit = True
        thread.join(10)
        engine.dispose()


def _signed_in(browser, base: str, user: str | None, width: int):
    context = browser.new_context(viewport={"width": width, "height": 900})
    if user is not None:
        page = context.new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", seed.PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/queue")
        page.close()
    return context


@pytest.mark.parametrize("device", sorted(DEVICES))
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_photographed(site, browser, lang: str, device: str) -> None:
    assert {route for route, _, _ in SCREENS.values()} == page_routes(site["app"])
    urls = page_urls(site)
    contexts: dict[str | None, object] = {}
    try:
        for name, (route, index, user) in SCREENS.items():
            if user not in contexts:
                contexts[user] = _signed_in(browser, site["base"], user, DEVICES[device])
            page = contexts[user].new_page()
            path = urls[route][index]
            sep = "&" if "?" in path else "?"
            response = page.goto(f"{site['base']}{path}{sep}lang={lang}")
            assert response is not None and response.status == 200, (name, lang, device)
            page.screenshot(path=str(SHOTS / f"{name}-{lang}-{device}.png"), full_page=True)
            if name == "audit" and device == "phone":
                _reads_without_sideways_scroll(page, DEVICES[device])
            page.close()
    finally:
        for context in contexts.values():
            context.close()


# The right edge of the widest thing in the audit table, and how far its box scrolls sideways.
_AUDIT_EXTENT = """() => {
  const table = document.querySelector('#audit-table');
  const box = table.parentElement;
  const cells = [...table.querySelectorAll('*')];
  const right = Math.max(...cells.map(e => e.getBoundingClientRect().right));
  return {right, hidden: box.scrollWidth - box.clientWidth, rows: table.rows.length};
}"""


def _reads_without_sideways_scroll(page, width: int) -> None:
    """The audit log on a phone: neither the page nor the log's own box scrolls sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    extent = page.evaluate(_AUDIT_EXTENT)
    assert extent["rows"] > 10, extent  # the world's audit trail is on the page
    assert extent["right"] <= width and extent["hidden"] <= 0, extent
