"""End to end in headless Chromium: setup → login → certificate upload → proxy host.

`test_ui_flow_on_live_server` drives pytest-django's `live_server` (the Django app in a
thread, static files included) through every page. `test_ui_flow_through_real_nginx`
drives a real `portway serve` (real nginx on loopback ports, see portway.testing.process)
and checks that the host created in the browser answers through nginx over HTTPS.

Needs the built UI assets (`npm ci && npm run build`) and Debian's chromium.
Set PORTWAY_SCREENSHOT_DIR=docs/screenshots to refresh the README's screenshots.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from portway.testing.browser import open_user_menu

from .conftest import leaf

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"
CERT_LABEL = "App wildcard (app.example.test, *.app.example.test)"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("PORTWAY_SCREENSHOT_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


# --- steps shared by both tests ------------------------------------------------------------


def first_run_setup(page, base: str) -> None:
    """Every page leads to /setup; a typo in the second password is caught inline."""
    from playwright.sync_api import expect

    page.goto(base + "/proxy-hosts")
    expect(page).to_have_url(base + "/setup")
    expect(page.get_by_role("heading", name="Welcome to Portway")).to_be_visible()
    page.fill("#id_name", "Ada Admin")
    page.fill("#id_email", EMAIL)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_password2", PASSWORD + "typo")
    page.click("text=Create administrator")
    expect(page.locator('[data-error-for="password2"]')).to_have_text(
        "The two passwords do not match."
    )
    page.fill("#id_password", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("text=Create administrator")
    expect(page).to_have_url(base + "/")
    expect(page.locator("#messages")).to_contain_text("Welcome to Portway, Ada Admin")


def logout_and_login(page, base: str) -> None:
    from playwright.sync_api import expect

    open_user_menu(page, "#logout-button")
    expect(page).to_have_url(base + "/login")
    expect(page.locator("#messages")).to_contain_text("You have been signed out.")
    page.fill("#id_email", EMAIL)
    page.fill("#id_password", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("Invalid e-mail address or password")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")
    expect(page.locator("#stat-hosts-total [data-count]")).to_have_text("0")


def upload_certificate(page, base: str, tmp_path: Path):
    """Validate, then save, a wildcard certificate for app.example.test. Returns it."""
    from playwright.sync_api import expect

    issued = leaf(["app.example.test", "*.app.example.test"])
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "privkey.pem"
    cert_file.write_bytes(issued.cert_pem)
    key_file.write_bytes(issued.key_pem())
    page.click("text=Certificates")
    expect(page.locator("#certificates-empty")).to_contain_text("No certificates yet")
    page.click("#add-certificate")
    page.fill("#id_nice_name", "App wildcard")
    page.set_input_files("#id_certificate", str(cert_file))
    page.set_input_files("#id_certificate_key", str(key_file))
    page.click("#validate-certificate")
    result = page.locator('[data-validation="ok"]')
    expect(result).to_be_visible()
    expect(result.locator('[data-field="cn"]')).to_have_text("app.example.test")
    expect(result.locator('[data-field="issuer"]')).to_contain_text("Portway UI Test Root")
    expect(page).to_have_url(base + "/certificates/new")  # validating did not navigate
    page.click("#save-certificate")
    expect(page).to_have_url(base + "/certificates")
    expect(page.locator("#messages")).to_contain_text("Certificate App wildcard added")
    expect(page.locator("#certificates tbody tr")).to_have_count(1)
    return issued


def create_proxy_host(
    page, base: str, *, port: int, api_port: int, screenshot: Path | None = None
) -> None:
    """Fill every tab of the form, trip the port check once, then save."""
    from playwright.sync_api import expect

    page.click("#nav-hosts")
    page.click("#nav-proxy-hosts")
    expect(page.locator("#hosts-empty")).to_contain_text("No proxy hosts yet")
    page.click("#hosts-empty >> text=Add proxy host")
    expect(page).to_have_url(base + "/proxy-hosts/new")
    page.fill("#id_domain_names", "app.example.test\nwww.app.example.test")
    page.fill("#id_forward_host", "127.0.0.1")
    page.fill("#id_forward_port", str(port))
    page.check("#id_allow_websocket_upgrade")

    page.click("#tab-locations-link")
    page.click("#add-location")
    page.click("#add-location")
    expect(page.locator("[data-location]")).to_have_count(2)
    page.fill("#location-0-path", "/api")
    page.fill("#location-0-forward_host", "127.0.0.1")
    page.fill("#location-0-forward_port", str(api_port))
    page.locator("[data-location]").nth(1).locator("[data-remove-location]").click()
    expect(page.locator("[data-location]")).to_have_count(1)

    page.click("#tab-ssl-link")
    expect(page.locator("#id_ssl_forced")).to_be_disabled()  # no certificate chosen yet
    page.select_option("#id_certificate_id", label=CERT_LABEL)
    expect(page.locator("#id_ssl_forced")).to_be_enabled()
    page.check("#id_ssl_forced")
    page.check("#id_http2_support")

    page.click("#tab-advanced-link")
    page.fill("#id_advanced_config", "client_max_body_size 20m;")
    page.click("#tab-details-link")
    expect(page.locator("#id_domain_names")).to_be_visible()
    if screenshot:
        page.mouse.move(640, 700)
        page.wait_for_timeout(300)  # let the tab fade finish
        page.screenshot(path=str(screenshot))

    page.fill("#id_forward_port", "80800")
    page.click("#save-proxy-host")
    # the port is wrong: the Details tab opens with the message beside the field
    expect(page.locator("#tab-details")).to_be_visible()
    expect(page.locator('[data-error-for="forward_port"]')).to_contain_text(
        "Must be a port number from 1 to 65535"
    )
    expect(page.locator("#id_forward_port")).to_have_class(re.compile("is-invalid"))
    expect(page.locator("#location-0-path")).to_have_value("/api")  # nothing typed was lost
    expect(page.locator("#id_certificate_id option:checked")).to_have_text(CERT_LABEL)
    page.fill("#id_forward_port", str(port))
    page.click("#save-proxy-host")
    expect(page).to_have_url(base + "/proxy-hosts")
    row = page.locator("#proxy-hosts tbody tr").first
    expect(row).to_contain_text("www.app.example.test")
    expect(row).to_contain_text(f"http://127.0.0.1:{port}")
    expect(row).to_contain_text("App wildcard")


# --- the tests -----------------------------------------------------------------------------


def test_ui_flow_on_live_server(
    live_server, transactional_db, browser_page, screenshot_dir: Path, tmp_path: Path
):
    from playwright.sync_api import expect

    page = browser_page
    base = live_server.url
    first_run_setup(page, base)
    logout_and_login(page, base)
    upload_certificate(page, base, tmp_path)
    create_proxy_host(
        page, base, port=8080, api_port=9000, screenshot=screenshot_dir / "proxy-host-form.png"
    )

    from portway.hosts.models import ProxyHost

    host = ProxyHost.objects.get()
    assert host.domain_names == ["app.example.test", "www.app.example.test"]
    assert host.locations[0]["path"] == "/api" and host.locations[0]["forward_port"] == 9000
    assert host.ssl_forced and host.http2_support and host.allow_websocket_upgrade
    assert host.certificate.nice_name == "App wildcard"
    assert host.advanced_config == "client_max_body_size 20m;"

    # --- the list: search, the nginx error popover, disable with confirmation --------------
    _more_hosts(host.owner)
    page.reload()
    expect(page.locator("#proxy-hosts tbody tr")).to_have_count(4)
    page.fill("#host-search", "grafana")
    expect(page.locator("#proxy-hosts tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/proxy-hosts\?q=grafana$"))
    page.fill("#host-search", "")
    expect(page.locator("#proxy-hosts tbody tr")).to_have_count(4)

    page.locator('[data-status="offline"]').hover()
    expect(page.locator(".popover")).to_contain_text('unknown directive "proxy_bufering"')

    grafana = page.locator("#proxy-hosts tbody tr", has_text="grafana.home.test")
    grafana.get_by_role("button", name="Disable grafana.home.test").click()
    expect(page.locator("#confirm-modal")).to_be_visible()
    expect(page.locator("#confirm-modal-text")).to_contain_text("Disable grafana.home.test?")
    page.click("#confirm-modal-ok")
    expect(grafana.locator('[data-status="disabled"]')).to_be_visible()
    expect(page.locator("#messages")).to_contain_text("Proxy host grafana.home.test disabled.")

    # --- the dashboard adds it up ----------------------------------------------------------
    page.click("text=Dashboard")
    expect(page.locator("#stat-hosts-total [data-count]")).to_have_text("4")
    expect(page.locator("#stat-hosts-disabled [data-count]")).to_have_text("1")
    expect(page.locator("#stat-hosts-offline [data-count]")).to_have_text("1")
    expect(page.locator("#recent-activity")).to_contain_text("created proxy host")
    page.screenshot(path=str(screenshot_dir / "dashboard.png"), full_page=True)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_ui_flow_through_real_nginx(browser_page, upstreams, tmp_path: Path):
    from playwright.sync_api import expect

    from portway.testing.process import PortwayProcess, wait_for

    app, api = upstreams("app"), upstreams("api")
    page = browser_page
    with PortwayProcess(tmp_path / "data", admin=False) as portway:
        base = f"http://127.0.0.1:{portway.admin_port}"
        first_run_setup(page, base)
        logout_and_login(page, base)
        issued = upload_certificate(page, base, tmp_path)
        create_proxy_host(page, base, port=app.port, api_port=api.port)

        # nginx serves the host with the uploaded certificate; /api goes to its location
        wait_for(lambda: portway.upstream_of("app.example.test", https=True) == "app", 30)
        served = portway.served_certificate("www.app.example.test")
        assert served.serial_number == issued.cert.serial_number
        assert portway.upstream_of("www.app.example.test", "/api/x", https=True) == "api"
        status, headers, body = portway.http("app.example.test", "/", https=True)
        assert json.loads(body)["x_forwarded_proto"] == "https"
        # Force SSL: plain HTTP is redirected
        status, headers, _ = portway.http("app.example.test", "/page")
        assert status == 301
        assert headers["location"] == f"https://app.example.test:{portway.https_port}/page"

        page.reload()
        expect(page.locator('[data-status="online"]')).to_have_count(1)


def _more_hosts(owner) -> None:
    """A few more hosts through the service, one of them rejected by nginx."""
    from portway.hosts import services
    from portway.hosts.models import ProxyHost

    for names, upstream, port in [
        (["grafana.home.test"], "10.0.0.12", 3000),
        (["nextcloud.home.test", "cloud.home.test"], "10.0.0.20", 8080),
        (["media.home.test"], "10.0.0.31", 8096),
    ]:
        services.create_proxy_host(
            owner,
            {
                "domain_names": names,
                "forward_scheme": "http",
                "forward_host": upstream,
                "forward_port": port,
                "block_exploits": True,
            },
        )
    ProxyHost.objects.filter(first_domain="media.home.test").update(
        nginx_online=False,
        nginx_err='nginx: [emerg] unknown directive "proxy_bufering" in proxy_host/4.conf:12',
    )
