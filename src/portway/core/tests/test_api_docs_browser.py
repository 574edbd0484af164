"""The API docs page (/api/docs) works on a closed network: Swagger UI comes from the
django-ninja package through Portway itself, never from a CDN.

Headless Chromium opens the page of a real `portway serve` with every request to anything
but 127.0.0.1 refused, and the operations must still render.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_api_docs_render_with_only_same_origin_requests(browser_page, tmp_path: Path):
    from playwright.sync_api import expect

    from portway.testing.process import PortwayProcess

    page = browser_page
    requested: list[str] = []
    offsite: list[str] = []

    def only_this_machine(route) -> None:  # noqa: ANN001
        url = route.request.url
        requested.append(url)
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            offsite.append(url)
            route.abort()

    page.context.route("**/*", only_this_machine)
    with PortwayProcess(tmp_path / "data") as portway:
        base = f"http://127.0.0.1:{portway.admin_port}"
        page.goto(base + "/api/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Portway API")
        operations = page.locator(".opblock-summary-path")
        expect(operations.filter(has_text="/nginx/proxy-hosts").first).to_be_visible()
        assert operations.count() > 20
        # the Swagger UI files came from Portway's own static files
        assert any(url.startswith(base + "/static/ninja/swagger-ui-bundle") for url in requested)
    assert offsite == [], f"the docs page asked other sites for: {offsite}"
