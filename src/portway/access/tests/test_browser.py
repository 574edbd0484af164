"""The Access Lists pages in headless Chromium (CSP violations and script errors fail the
test, see portway.testing.browser): navigation, create with an inline error, search,
edit, delete with the confirmation dialog."""

from __future__ import annotations

import re

import pytest

from portway.access.models import AccessList, AccessListItem
from portway.testing.api import ADMIN_EMAIL, PASSWORD, make_admin
from portway.testing.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_access_lists_in_the_browser(live_server, transactional_db, browser_page) -> None:
    from playwright.sync_api import expect

    page = browser_page
    base = live_server.url
    make_admin()
    sign_in(page, base, ADMIN_EMAIL, PASSWORD)
    expect(page).to_have_url(base + "/")

    page.click("#nav-access-lists")
    expect(page).to_have_url(base + "/access-lists")
    expect(page.locator("#access-lists-empty")).to_be_visible()
    page.click("#add-access-list")

    # a bad rule: the form comes back with the message beside the rules, nothing saved
    page.fill("#id_name", "Staff")
    page.fill("#id_items-0-username", "alice")
    page.fill("#id_items-0-password", "wonderland1")
    page.fill("#id_clients", "allow 10.0.0.0/8\nallow lan")
    page.click("#save-access-list")
    expect(page.locator('[data-error-for="clients"]')).to_contain_text("Line 2")
    assert not AccessList.objects.exists()
    expect(page.locator("#id_name")).to_have_value("Staff")
    page.fill("#id_items-0-password", "wonderland1")  # never sent back to the page
    page.fill("#id_clients", "allow 10.0.0.0/8\ndeny all")
    page.click("#save-access-list")
    expect(page).to_have_url(base + "/access-lists")
    expect(page.locator("#messages")).to_contain_text("Access list Staff created.")

    page.click("#add-access-list")
    page.fill("#id_name", "Family")
    page.fill("#id_clients", "allow 192.168.1.0/24")
    page.click("#save-access-list")
    expect(page.locator("#access-lists tbody tr")).to_have_count(2)
    page.fill("#access-list-search", "fam")
    expect(page.locator("#access-lists tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/access-lists\?q=fam$"))
    page.fill("#access-list-search", "")
    expect(page.locator("#access-lists tbody tr")).to_have_count(2)

    # edit: the stored password stays when the field is left empty
    staff = AccessList.objects.get(name="Staff")
    old = AccessListItem.objects.get(access_list=staff).password_hash
    page.get_by_role("link", name="Edit Staff").click()
    expect(page.locator("#id_items-0-username")).to_have_value("alice")
    expect(page.locator("#id_items-0-password")).to_have_value("")
    page.fill("#id_items-1-username", "bob")
    page.fill("#id_items-1-password", "builder9")
    page.click("#save-access-list")
    expect(page.locator("#messages")).to_contain_text("Access list Staff saved.")
    stored = dict(AccessListItem.objects.values_list("username", "password_hash"))
    assert stored["alice"] == old and "bob" in stored

    # delete with the confirmation dialog
    row = page.locator("#access-lists tbody tr", has_text="Family")
    row.get_by_role("button", name="Delete Family").click()
    expect(page.locator("#confirm-modal")).to_be_visible()
    expect(page.locator("#confirm-modal-text")).to_contain_text("Delete the access list Family?")
    page.click("#confirm-modal-ok")
    expect(page.locator("#access-lists tbody tr")).to_have_count(1)
    expect(page.locator("#messages")).to_contain_text("Access list Family deleted.")
