"""The host list on a phone (375 px wide, Chromium): no sideways scrolling of the page,
every row's actions on screen, the menu reachable.

Set PORTWAY_SCREENSHOT_DIR to keep the screenshot (docs/screenshots for the README).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portway.testing.api import make_admin

from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 375, "height": 812}


def _hosts(owner, certificate) -> None:  # noqa: ANN001
    """Hosts whose rows are as wide as real ones get: long names, several names, IPv6."""
    from portway.hosts import services

    for names, upstream, port, extra in [
        (["grafana.home.test"], "10.0.0.12", 3000, {}),
        (
            ["nextcloud.club-of-very-long-subdomain-names.example.test", "cloud.home.test",
             "files.home.test", "drive.home.test"],
            "nextcloud-backend.internal.example.test", 8080,
            {"certificate_id": certificate.pk, "ssl_forced": True},
        ),
        (["media.home.test"], "fd00:1234:5678:9abc::31", 8096, {}),
    ]:  # fmt: skip
        services.create_proxy_host(
            owner,
            {"domain_names": names, "forward_scheme": "http", "forward_host": upstream,
             "forward_port": port, **extra},
        )  # fmt: skip


def test_host_list_fits_a_phone(
    live_server, transactional_db, browser_page, make_certificate, tmp_path: Path
):
    from playwright.sync_api import expect

    admin = make_admin("phone@example.com", PASSWORD, name="Pat Phone")
    certificate = make_certificate(
        "Club wildcard (a long certificate name)", ["*.home.test"], owner=admin
    )
    _hosts(admin, certificate)
    page = browser_page
    page.set_viewport_size(PHONE)
    base = live_server.url
    page.goto(base + "/login")
    page.fill("#id_email", "phone@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")
    page.goto(base + "/proxy-hosts")
    rows = page.locator("#proxy-hosts tbody tr")
    expect(rows).to_have_count(3)
    screenshots = Path(os.environ.get("PORTWAY_SCREENSHOT_DIR") or tmp_path)
    page.screenshot(path=str(screenshots / "proxy-hosts-phone.png"), full_page=True)

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width}px wide"
    for index in range(3):
        row = rows.nth(index)
        for role, name in (("link", "Edit"), ("button", "Disable"), ("button", "Delete")):
            box = row.get_by_role(role, name=name).first.bounding_box()
            assert box is not None, name
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
    nextcloud = rows.filter(has_text="cloud.home.test")
    destination = nextcloud.locator("[data-destination]")
    destination.scroll_into_view_if_needed()
    expect(destination).to_be_in_viewport(ratio=1)  # wrapped, not cut off at the right
    expect(nextcloud).to_contain_text("Club wildcard")  # the SSL column is shown too

    # the actions work from there: disable asks first
    nextcloud.get_by_role("button", name="Disable").click()
    expect(page.locator("#confirm-modal")).to_be_visible()
    page.click("#confirm-modal-ok")
    expect(nextcloud.locator('[data-status="disabled"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # the menu folds behind the toggler and opens
    page.click(".navbar-toggler")
    page.get_by_role("link", name="Certificates").click()
    expect(page).to_have_url(base + "/certificates")
