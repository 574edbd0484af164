"""Pasting a certificate and its key as text (as Cloudflare shows an Origin certificate),
in headless Chromium: a rejected save keeps everything that was entered, and fixing the
one wrong part saves it."""

from __future__ import annotations

import pytest

from portway.testing.api import make_admin

from .conftest import PASSWORD, leaf

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_pasted_certificate_survives_a_rejected_save(live_server, transactional_db, browser_page):
    from playwright.sync_api import expect

    make_admin("paste@example.com", PASSWORD, name="Pia Paste")
    origin = leaf(["club.example.test", "*.club.example.test"])
    other = leaf(["other.example.test"])
    page = browser_page
    base = live_server.url
    page.goto(base + "/login")
    page.fill("#id_email", "paste@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")

    page.goto(base + "/certificates/new")
    page.fill("#id_nice_name", "Cloudflare origin")
    page.click('[data-pem-field="certificate"] summary')
    page.fill("#id_certificate_text", origin.cert_pem.decode())
    page.click('[data-pem-field="certificate_key"] summary')
    page.fill("#id_certificate_key_text", other.key_pem().decode())  # the wrong key
    page.click("#save-certificate")
    expect(page.locator('[data-error-for="certificate_key"]')).to_contain_text("does not match")
    # everything entered is still there
    expect(page.locator("#id_nice_name")).to_have_value("Cloudflare origin")
    expect(page.locator("#id_certificate_text")).to_have_value(origin.cert_pem.decode())
    expect(page.locator("#id_certificate_key_text")).to_be_visible()

    page.fill("#id_certificate_key_text", origin.key_pem().decode())
    page.click("#validate-certificate")
    expect(page.locator('[data-validation="ok"] [data-field="cn"]')).to_have_text(
        "club.example.test"
    )
    page.click("#save-certificate")
    expect(page).to_have_url(base + "/certificates")
    expect(page.locator("#messages")).to_contain_text(
        "Certificate Cloudflare origin added; it covers club.example.test, *.club.example.test"
    )
