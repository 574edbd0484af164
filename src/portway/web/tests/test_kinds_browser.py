"""Redirection hosts and 404 hosts in headless Chromium against the live app.

The Hosts menu leads to both pages; the forms show bad input beside the field (and save
nothing); a saved host is listed, searched, disabled and deleted with confirmation; the
dashboard counts every kind. The CSP-checking fixture fails on inline script or style.
"""

from __future__ import annotations

import re

import pytest

from portway.hosts.models import DeadHost, RedirectionHost
from portway.testing.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = "ada@example.com"
PASSWORD = "correct horse battery"


def test_redirection_hosts_pages(live_server, transactional_db, browser_page, admin):  # noqa: ANN001
    from playwright.sync_api import expect

    from portway.access.services import create_access_list

    staff = create_access_list(
        admin, {"name": "Staff", "clients": [{"address": "10.0.0.0/8", "directive": "allow"}]}
    )
    page, base = browser_page, live_server.url
    sign_in(page, base, ADMIN, PASSWORD)
    page.click("#nav-hosts")
    page.click("#nav-redirection-hosts")
    expect(page).to_have_url(base + "/redirection-hosts")
    expect(page.locator("#hosts-empty")).to_contain_text("No redirection hosts yet")
    page.click("#add-redirection-host")

    # bad input: a scheme in the target, shown beside the field; nothing saved
    page.fill("#id_domain_names", "old.example.test")
    page.fill("#id_forward_domain_name", "https://new.example.org")
    page.click("#save-redirection-host")
    error = page.locator('[data-error-for="forward_domain_name"]')
    expect(error).to_contain_text("remove https://")
    assert not RedirectionHost.objects.exists()
    # a ';' is refused the same way, the other values are kept for correction
    expect(page.locator("#id_domain_names")).to_have_value("old.example.test")
    page.fill("#id_forward_domain_name", "new.example.org;")
    page.click("#save-redirection-host")
    expect(error).to_contain_text(re.compile("must not contain ';'", re.IGNORECASE))
    assert not RedirectionHost.objects.exists()

    page.fill("#id_forward_domain_name", "new.example.org/landing")
    page.select_option("#id_forward_http_code", "308")
    page.select_option("#id_forward_scheme", "https")
    page.select_option("#id_access_list_id", str(staff.pk))
    page.click("#save-redirection-host")
    expect(page).to_have_url(base + "/redirection-hosts")
    expect(page.locator("#messages")).to_contain_text("Redirection host old.example.test created")
    row = page.locator("#redirection-hosts tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("[data-destination]")).to_contain_text("https://new.example.org/landing")
    expect(row.locator("[data-code]")).to_contain_text("308")
    expect(row.locator("[data-access]")).to_contain_text("Staff")
    host = RedirectionHost.objects.get()
    assert (host.forward_http_code, host.forward_scheme, host.preserve_path) == (308, "https", True)
    assert host.access_list_id == staff.pk
    # the edit page shows the list chosen
    row.locator('a[title="Edit"]').click()
    expect(page.locator("#id_access_list_id")).to_have_value(str(staff.pk))

    # the name index spans kinds: a 404 host cannot take the same name
    page.goto(base + "/dead-hosts/new")
    page.fill("#id_domain_names", "old.example.test")
    page.click("#save-dead-host")
    expect(page.locator('[data-error-for="domain_names"]')).to_contain_text(
        f"redirection host {host.pk}"
    )
    assert not DeadHost.objects.exists()

    # search, then disable and delete with confirmation
    page.goto(base + "/redirection-hosts")
    page.fill("#host-search", "nothing-like-it")
    expect(page.locator("#redirection-hosts-table")).to_contain_text("No redirection hosts match")
    page.fill("#host-search", "old.ex")
    expect(row).to_have_count(1)
    row.locator('button[title="Disable"]').click()
    expect(page.locator("#confirm-modal-text")).to_contain_text("Disable old.example.test?")
    page.click("#confirm-modal-ok")
    expect(page.locator("#messages")).to_contain_text("old.example.test disabled")
    expect(row.locator('button[title="Enable"]')).to_be_visible()
    expect(page.locator("#confirm-modal")).to_be_hidden()
    row.locator('button[title="Delete"]').click()
    expect(page.locator("#confirm-modal-text")).to_contain_text("Delete old.example.test?")
    page.click("#confirm-modal-ok")
    expect(page.locator("#messages")).to_contain_text("old.example.test deleted")
    assert not RedirectionHost.objects.exists()


def test_dead_hosts_pages_and_dashboard(live_server, transactional_db, browser_page, admin):  # noqa: ANN001
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    sign_in(page, base, ADMIN, PASSWORD)
    page.click("#nav-hosts")
    page.click("#nav-dead-hosts")
    expect(page).to_have_url(base + "/dead-hosts")
    page.click("#add-dead-host")
    page.fill("#id_domain_names", "bad;name.example.test")
    page.click("#save-dead-host")
    expect(page.locator('[data-error-for="domain_names"]')).to_be_visible()
    assert not DeadHost.objects.exists()
    page.fill("#id_domain_names", "gone.example.test\nwww.gone.example.test")
    page.click("#save-dead-host")
    expect(page.locator("#messages")).to_contain_text("404 host gone.example.test")
    expect(page.locator("#dead-hosts tbody tr")).to_have_count(1)

    # edit: the saved values come back, a change is kept
    page.locator('#dead-hosts a[title="Edit"]').click()
    expect(page.locator("#id_domain_names")).to_have_value(
        "gone.example.test\nwww.gone.example.test"
    )
    page.fill("#id_domain_names", "gone.example.test")
    page.click("#save-dead-host")
    expect(page.locator("#messages")).to_contain_text("saved")
    assert DeadHost.objects.get().domain_names == ["gone.example.test"]

    page.goto(base + "/")
    expect(page.locator("#stat-hosts-total [data-count]")).to_have_text("1")
    expect(page.locator('[data-kind-count="404"]')).to_have_text("1 404")
