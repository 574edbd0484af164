"""Headless Chromium for UI tests: Debian's /usr/bin/chromium driven by Playwright.

Never `playwright install`: the browser comes from the distribution (PORTWAY_CHROMIUM to
point elsewhere). The flags keep Chromium off the network except for the pages a test
opens (this machine's network is closed; background requests only add noise).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from portway.testing.plugin import missing_prerequisite

CHROMIUM = os.environ.get("PORTWAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def is_csp_violation(console_text: str) -> bool:
    """Whether a console message is Chromium's report of a Content-Security-Policy block."""
    return "Content Security Policy" in console_text


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """A Chromium page (1280×900) that fails the test on JavaScript errors and on anything
    the Content-Security-Policy blocked (Chromium reports each on the console)."""
    try:
        from playwright import sync_api as playwright_api
    except ImportError:
        missing_prerequisite("Playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        missing_prerequisite(
            f"no Chromium at {CHROMIUM} (apt-get install chromium, or set PORTWAY_CHROMIUM)"
        )
    from portway.web.assets import BUILD_COMMAND, assets_built

    assert assets_built(), f"UI assets are not built: run `{BUILD_COMMAND}` first"
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    errors: list[str] = []
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "console",
            lambda message: errors.append(message.text) if is_csp_violation(message.text) else None,
        )
        yield page
        browser.close()
    assert errors == [], f"JavaScript errors or CSP violations: {errors}"


def sign_in(page, base: str, email: str, password: str, next_url: str = "") -> None:  # noqa: ANN001
    """Sign in through Portway's login page (`base` is the live server's URL, e.g.
    "http://127.0.0.1:8081"; `next_url` an optional ?next= path). It only submits the
    form: the caller asserts where the browser lands."""
    page.goto(base + "/login" + (f"?next={next_url}" if next_url else ""))
    page.fill("#id_email", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def open_user_menu(page, item: str) -> None:  # noqa: ANN001
    """Open the navbar's user menu and click `item` (a selector inside it).

    The dropdown opens through Tabler's script: a click that lands before the page's
    scripts have run opens nothing (seen once in a loaded CI run), so the menu is
    clicked again until `item` shows, up to five times.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    menu_item = page.locator(item)
    for _ in range(5):
        page.click("#user-menu")
        try:
            menu_item.wait_for(state="visible", timeout=2000)
            break
        except PlaywrightTimeout:  # the menu did not open
            continue
    menu_item.click()
