"""In headless Chromium against a real `portway serve` + pebble: request a certificate in
the UI, watch the live progress turn it valid, and see nginx serve it."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def page(browser_page):  # noqa: ANN001, ANN201
    return browser_page


def test_request_in_the_ui_and_watch_it_become_valid(acme, page):
    from playwright.sync_api import expect

    from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD

    pw = acme.portway
    base = f"http://127.0.0.1:{pw.admin_port}"
    page.goto(base + "/login")
    page.fill("#id_email", ADMIN_EMAIL)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")

    page.goto(base + "/certificates")
    page.click("#request-letsencrypt")
    expect(page).to_have_url(base + "/certificates/letsencrypt/new")
    expect(page.locator("#dns-settings")).to_be_hidden()
    page.check("#id_dns_challenge")
    expect(page.locator("#dns-settings")).to_be_visible()
    page.select_option("#id_dns_provider", "cloudflare")
    expect(page.locator("#id_dns_provider_credentials")).to_have_value(
        "# Cloudflare API token (Zone:DNS:Edit permission on the zone)\n"
        "dns_cloudflare_api_token = 0123456789abcdef0123456789abcdef01234567"
    )
    page.uncheck("#id_dns_challenge")

    page.fill("#id_domain_names", "*.ui.acme.test")  # a wildcard needs DNS: said inline
    page.click("#request-certificate")
    expect(page.locator('[data-error-for="domain_names"]')).to_contain_text("DNS challenge")

    page.fill("#id_domain_names", "ui.acme.test\nwww.ui.acme.test")
    page.click("#request-certificate")
    expect(page).to_have_url(re.compile(r"/certificates/\d+$"))
    progress = page.locator("#certificate-progress")
    expect(progress).to_have_attribute("data-status", "valid", timeout=60_000)
    expect(page.locator('[data-domain="www.ui.acme.test"]')).to_have_attribute(
        "data-state", "valid"
    )
    expect(page.locator("#acme-status")).to_have_text("Valid")
    expect(page.locator("#certificate-log")).to_contain_text("Certificate issued")
    serial = page.locator("#certificate-serial").inner_text()

    page.click("text=Back to list")
    expect(page.locator("#certificates")).to_contain_text("ui.acme.test")
    _, certs = pw.api("GET", "/api/portway/certificates")
    cert = next(c for c in certs if "ui.acme.test" in c["domain_names"])
    assert cert["meta"]["serial"] == serial

    # a name that points elsewhere fails with the message that says so, live on the page
    acme.dns.add_a("elsewhere-ui.acme.test", "127.0.0.2")
    page.click("#request-letsencrypt")
    page.fill("#id_domain_names", "elsewhere-ui.acme.test")
    page.click("#request-certificate")
    expect(page.locator("#certificate-progress")).to_have_attribute(
        "data-status", "failed", timeout=60_000
    )
    expect(page.locator("#acme-error")).to_contain_text(
        "elsewhere-ui.acme.test does not resolve to this server: it points to 127.0.0.2"
    )
    expect(page.locator('[data-domain="elsewhere-ui.acme.test"]')).to_have_attribute(
        "data-state", "invalid"
    )
    page.click("text=ACME details")
    expect(page.locator("#certificate-log")).to_contain_text("urn:ietf:params:acme:error:")
    page.click("text=Back to list")
    expect(page.locator('[data-acme-status="failed"]')).to_have_count(1)
