"""The Streams page in headless Chromium against the live app.

Found where an NPM user looks (Hosts → Streams); bad input is shown beside its field and
saves nothing; a saved stream is listed, edited, searched, disabled and deleted with
confirmation; the dashboard counts it. The CSP-checking fixture fails on inline script
or style.
"""

from __future__ import annotations

import pytest

from portway.hosts.models import Stream
from portway.testing.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = "ada@example.com"
PASSWORD = "correct horse battery"


def test_streams_page(live_server, transactional_db, browser_page, admin):  # noqa: ANN001
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    sign_in(page, base, ADMIN, PASSWORD)
    page.click("#nav-hosts")
    page.click("#nav-streams")
    expect(page).to_have_url(base + "/streams")
    expect(page.locator("#hosts-empty")).to_contain_text("No streams yet")
    page.click("#add-stream")

    # bad input beside each field; nothing saved, what was typed kept
    page.fill("#id_incoming_port", "65536")
    page.fill("#id_forwarding_host", "tcp://db.lan")
    page.fill("#id_forwarding_port", "5432")
    page.click("#save-stream")
    expect(page.locator('[data-error-for="incoming_port"]')).to_contain_text("1 to 65535")
    expect(page.locator('[data-error-for="forwarding_host"]')).to_contain_text("tcp://")
    expect(page.locator("#id_forwarding_port")).to_have_value("5432")
    assert not Stream.objects.exists()
    page.fill("#id_incoming_port", "15432")
    page.fill("#id_forwarding_host", "db.lan;")
    page.click("#save-stream")
    expect(page.locator('[data-error-for="forwarding_host"]')).to_contain_text(";")
    page.fill("#id_incoming_port", "81")  # Portway's own admin port
    page.fill("#id_forwarding_host", "db.lan")
    page.click("#save-stream")
    expect(page.locator('[data-error-for="incoming_port"]')).to_contain_text("admin")
    page.fill("#id_incoming_port", "15432")
    page.locator("#id_tcp_forwarding").uncheck()
    page.click("#save-stream")
    expect(page.locator('[data-error-for="tcp_forwarding"]')).to_contain_text("UDP")
    assert not Stream.objects.exists()

    page.locator("#id_tcp_forwarding").check()
    page.locator("#id_udp_forwarding").check()
    page.click("#save-stream")
    expect(page).to_have_url(base + "/streams")
    expect(page.locator("#messages")).to_contain_text("created")
    row = page.locator("#streams tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("[data-incoming-port]")).to_have_text("15432")
    expect(row.locator("[data-destination]")).to_have_text("db.lan:5432")
    expect(row.locator("[data-protocols]")).to_contain_text("TCP")
    expect(row.locator("[data-protocols]")).to_contain_text("UDP")
    stream = Stream.objects.get()
    assert (stream.tcp_forwarding, stream.udp_forwarding) == (True, True)

    # edit: the saved values come back, a change is kept
    row.locator('a[title="Edit"]').click()
    expect(page.locator("#id_incoming_port")).to_have_value("15432")
    expect(page.locator("#id_udp_forwarding")).to_be_checked()
    page.locator("#id_udp_forwarding").uncheck()
    page.click("#save-stream")
    expect(page.locator("#messages")).to_contain_text("saved")
    assert Stream.objects.get().udp_forwarding is False

    page.goto(base + "/")
    expect(page.locator('[data-kind-count="stream"]')).to_have_text("1 stream")
    expect(page.locator("#recent-activity")).to_contain_text("created stream port 15432")

    # search, then disable and delete with confirmation
    page.goto(base + "/streams")
    page.fill("#host-search", "999")
    expect(page.locator("#streams-table")).to_contain_text("No streams match")
    page.fill("#host-search", "154")
    expect(row).to_have_count(1)
    row.locator('button[title="Disable"]').click()
    expect(page.locator("#confirm-modal-text")).to_contain_text("port 15432")
    page.click("#confirm-modal-ok")
    expect(page.locator("#messages")).to_contain_text("disabled")
    expect(row.locator('[data-status="disabled"]')).to_be_visible()
    expect(page.locator("#confirm-modal")).to_be_hidden()
    row.locator('button[title="Delete"]').click()
    page.click("#confirm-modal-ok")
    expect(page.locator("#messages")).to_contain_text("deleted")
    assert not Stream.objects.exists()
