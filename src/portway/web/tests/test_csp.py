"""Content-Security-Policy: a strict header on every page, and pages that need nothing more.

The fast tests read the header and the served HTML through Django's test client; the
browser tests open the pages in headless Chromium, whose console reports anything the
policy blocked (the `browser_page` fixture fails a test on such a report, so the UI flow
in test_browser.py is checked too).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from portway.testing.browser import is_csp_violation

from .conftest import PASSWORD

UI_PAGES = [
    "/",
    "/proxy-hosts",
    "/proxy-hosts/new",
    "/certificates",
    "/certificates/new",
    "/certificates/letsencrypt/new",
    "/settings/default-site",
    "/proxy-hosts/{host}",
    "/certificates/{certificate}",
]


def _directives(response: Any) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.django_db
class TestHeader:
    @pytest.mark.parametrize("url", ["/login", "/api/docs", "/api/"])
    def test_public_pages_carry_the_policy(self, client: Client, admin, url: str) -> None:
        directives = _directives(client.get(url))
        assert directives["default-src"] == ["'self'"]
        assert directives["script-src"] == ["'self'"]
        assert directives["style-src"] == ["'self'"]
        assert directives["object-src"] == ["'none'"]
        assert directives["base-uri"] == ["'none'"]
        assert directives["frame-ancestors"] == ["'none'"]  # X_FRAME_OPTIONS=DENY

    @pytest.mark.parametrize("url", UI_PAGES)
    def test_pages_have_no_inline_script_style_or_handler(
        self, ui: Client, make_host, certificate, url: str
    ) -> None:
        host = make_host(
            "app.example.test",
            certificate_id=certificate.pk,
            locations=[{"path": "/a", "forward_host": "10.0.0.2", "forward_port": 80}],
        )
        response = ui.get(url.format(host=host.pk, certificate=certificate.pk))
        assert response.status_code == 200
        assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
        html = response.content.decode()
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", html) == []
        assert re.findall(r"<style\b", html) == []
        assert re.findall(r"\sstyle=", html) == []
        assert re.findall(r"\son[a-z]+=", html) == []
        assert "javascript:" not in html
        # htmx is told not to inject its indicator <style> nor to eval
        assert '"includeIndicatorStyles": false' in html

    def test_login_and_setup_pages_have_no_inline_script_or_style(self, client: Client) -> None:
        html = client.get("/setup").content.decode()
        assert not re.findall(r"<script(?![^>]*\ssrc=)|<style\b|\sstyle=|\son[a-z]+=", html)

    def test_sameorigin_framing_is_mirrored(self, client: Client, settings, admin) -> None:
        from csp.constants import SELF

        policy = {**settings.CONTENT_SECURITY_POLICY}
        policy["DIRECTIVES"] = {**policy["DIRECTIVES"], "frame-ancestors": [SELF]}
        settings.CONTENT_SECURITY_POLICY = policy
        assert _directives(client.get("/login"))["frame-ancestors"] == ["'self'"]


# --- in Chromium ---------------------------------------------------------------------------


def _log_in(page, base: str, email: str) -> None:
    from playwright.sync_api import expect

    page.goto(base + "/login")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")


@pytest.mark.browser
@pytest.mark.slow
def test_the_violation_detector_sees_a_blocked_inline_style(
    live_server, transactional_db, browser_page
) -> None:
    """Negative control: the console listener the fixture uses does catch a CSP block."""
    page = browser_page.context.new_page()  # no failing listeners on this one
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text))
    page.goto(live_server.url + "/login")
    page.evaluate("document.body.setAttribute('style', 'background: red')")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=1>')")
    page.wait_for_function("document.querySelector('img[src=x]') !== null")
    page.wait_for_timeout(200)  # console events arrive asynchronously
    assert any(is_csp_violation(text) for text in seen), seen
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
    page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_pages_beyond_the_main_flow_work_under_the_policy(
    live_server, transactional_db, browser_page, admin, make_host
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    base = live_server.url
    _log_in(page, base, admin.email)
    response = page.goto(base + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]

    # Let's Encrypt form: the DNS provider select swaps in its credential fields (htmx)
    page.goto(base + "/certificates/letsencrypt/new")
    page.check("#id_dns_challenge")
    page.select_option("#id_dns_provider", "cloudflare")
    credentials = page.locator("#id_dns_provider_credentials")
    expect(credentials).to_have_value(re.compile("dns_cloudflare_api_token"))

    # default site: choosing an answer shows only its inputs (portway.js)
    page.goto(base + "/settings/default-site")
    page.check("#default-site-redirect", force=True)
    expect(page.locator("#id_redirect")).to_be_visible()
    page.check("#default-site-html", force=True)
    expect(page.locator("#id_html")).to_be_visible()
    expect(page.locator("#id_redirect")).to_be_hidden()

    # htmx search with its spinner, then a delete confirmed in the Tabler modal
    make_host("app.example.test")
    make_host("other.example.test")
    page.goto(base + "/proxy-hosts")
    page.fill("#host-search", "other")
    expect(page.locator("#proxy-hosts tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Delete other.example.test").click()
    expect(page.locator("#confirm-modal")).to_be_visible()
    page.click("#confirm-modal-ok")
    expect(page.locator("#messages")).to_contain_text("deleted")

    # the API docs are served from Portway's own files and render
    page.goto(base + "/api/docs")
    # Swagger UI builds the page from the whole schema in the browser: seconds on a busy
    # machine, so wait longer than Playwright's default 5 s
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=30_000)
