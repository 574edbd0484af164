"""The Tunnels pages in headless Chromium (CSP violations and script errors fail the test):
create a tunnel host with an inline error first, create an access key shown once, see a
live session (a real tunnel service and a real WebSocket client) and kill it, revoke the
key, delete the tunnel host."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import unix_connect

from portway.testing.api import ADMIN_EMAIL, PASSWORD, make_admin
from portway.testing.browser import sign_in
from portway.testing.process import terminate, wait_for
from portway.tunnels import services
from portway.tunnels.models import Tunnel, TunnelKey

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_tunnels_in_the_browser(live_server, transactional_db, browser_page) -> None:
    from playwright.sync_api import expect

    directory = services.paths().tunnels
    directory.mkdir(parents=True, exist_ok=True)
    service = subprocess.Popen([sys.executable, "-m", "portway.tunnels.server", str(directory)])
    target = socket.create_server(("127.0.0.1", 0))
    try:
        wait_for(lambda: (directory / "control.sock").exists(), 15)
        page = browser_page
        base = live_server.url
        make_admin()
        sign_in(page, base, ADMIN_EMAIL, PASSWORD)
        expect(page).to_have_url(base + "/")

        page.click("#nav-tunnels")
        expect(page).to_have_url(base + "/tunnels")
        expect(page.locator("#tunnels-empty")).to_be_visible()
        page.click("#add-tunnel")
        page.fill("#id_domain_names", "db.example.test")
        page.fill("#id_forward_port", "99999")
        page.click("#save-tunnel")
        expect(page.locator('[data-error-for="forward_port"]')).to_contain_text("1 to 65535")
        assert not Tunnel.objects.exists()
        page.fill("#id_forward_port", str(target.getsockname()[1]))
        page.click("#save-tunnel")
        expect(page.locator("#messages")).to_contain_text("Tunnel host db.example.test created.")
        tunnel = Tunnel.objects.get()

        page.fill("#id_key_name", "office laptop")
        page.click("#create-key")
        key = page.locator("[data-new-key]").inner_text().strip()
        assert key.startswith("ptk_")
        expect(page.locator('#tunnel-keys [data-key="office laptop"]')).to_be_visible()
        page.reload()  # shown once: not on the page any more
        expect(page.locator("#new-key")).to_have_count(0)

        with unix_connect(
            str(directory / "service.sock"),
            "ws://db.example.test/",
            additional_headers={
                "Authorization": f"Bearer {key}",
                "X-Portway-Tunnel": str(tunnel.pk),
                "X-Real-IP": "127.0.0.9",
            },
        ) as client:
            page.click("#nav-tunnels")
            live = page.locator("#tunnel-sessions tr[data-live]")
            expect(live).to_have_count(1)
            expect(live).to_contain_text("key office laptop")
            expect(live).to_contain_text("127.0.0.9")
            live.locator("button").click()
            expect(page.locator("#messages")).to_contain_text("ended")
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=10)
            assert closed.value.rcvd.code == 4003  # ended by an administrator
        services.ingest_journal()
        page.reload()
        expect(page.locator("#tunnel-sessions")).to_contain_text("ended by an administrator")

        page.locator(f"#tunnel-{tunnel.pk}").get_by_title("Edit").click()
        page.get_by_role("button", name="Revoke office laptop").click()
        expect(page.locator("#messages")).to_contain_text("Key revoked")
        assert not TunnelKey.objects.exists()
        page.click("#nav-tunnels")
        page.locator(f"#tunnel-{tunnel.pk}").get_by_title("Delete").click()
        expect(page.locator("#messages")).to_contain_text("deleted")
        assert not Tunnel.objects.exists()
    finally:
        terminate(service)
        target.close()
