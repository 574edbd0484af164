"""Shared case forward-host-pasted-url: a service's URL or `host:port` pasted as the
forward host is refused with what to do, through the API and the UI form; surrounding
spaces are trimmed and the host is served through real nginx.

Runs against a real `portway serve` (real nginx on loopback ports, see
portway.testing.process); the form is driven in headless Chromium.
"""

from __future__ import annotations

import copy

import pytest

from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, wait_for

try:
    from test_shared_cases import CASES
except ImportError:  # collected from another rootdir
    CASES = []

CASE_ID = "forward-host-pasted-url"
DOMAIN = "paste.example.test"

pytestmark = [pytest.mark.slow]


def _case() -> dict:
    for case in CASES:
        if case["id"] == CASE_ID:
            return case
    pytest.skip(f"shared case {CASE_ID} is not in ../shared/cases (set PORTWAY_SHARED_DIR)")


def _error(result: tuple[int, object]) -> str:
    status, data = result
    assert status == 400, f"expected 400, got {status}: {data}"
    assert isinstance(data, dict) and data["error"]["code"] == 400, data
    return data["error"]["message"]


@pytest.mark.e2e_db
def test_forward_host_pasted_url_api(portway, upstreams):
    upstream = upstreams("upstream-8080")
    url_step, port_step, spaces_step = _case()["steps"]
    before = portway.api("GET", "/api/nginx/proxy-hosts")[1]

    message = _error(portway.api(url_step["method"], url_step["path"], url_step["body"]))
    assert message.startswith("data/forward_host "), message
    assert "remove the scheme http:// and put it in forward_scheme" in message
    assert "put the port 8080 in forward_port" in message
    assert "IPv6" not in message

    message = _error(portway.api(port_step["method"], port_step["path"], port_step["body"]))
    assert message.startswith("data/forward_host "), message
    assert "put the port 8080 in forward_port" in message
    assert "IPv6" not in message
    assert portway.api("GET", "/api/nginx/proxy-hosts")[1] == before  # nothing was created

    body = copy.deepcopy(spaces_step["body"])
    assert body["forward_host"] == " 127.0.0.1 "
    body["forward_port"] = upstream.port  # the case's 8080 stands for a real upstream
    status, host = portway.api(spaces_step["method"], spaces_step["path"], body)
    assert status == 201, host
    assert host["forward_host"] == "127.0.0.1"
    assert host["meta"]["nginx_online"] is True, host["meta"]
    wait_for(lambda: portway.upstream_of(DOMAIN) == "upstream-8080")


@pytest.mark.browser
def test_forward_host_pasted_url_ui_form(portway, upstreams, browser_page):
    from playwright.sync_api import expect

    upstream = upstreams("upstream-8080")
    page = browser_page
    base = f"http://127.0.0.1:{portway.admin_port}"
    page.goto(base + "/login")
    page.fill("#id_email", ADMIN_EMAIL)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")

    host_error = page.locator('[data-error-for="forward_host"]')
    page.goto(base + "/proxy-hosts/new")
    page.fill("#id_domain_names", f"{DOMAIN}\nwww.{DOMAIN}, cam*.{DOMAIN}")
    page.fill("#id_forward_host", "http://127.0.0.1:8080/")
    page.fill("#id_forward_port", "8080")
    page.click("#save-proxy-host")
    expect(host_error).to_contain_text("remove the scheme http:// and put it in the Scheme field")
    expect(host_error).to_contain_text("put the port 8080 in the Port field")
    expect(host_error).not_to_contain_text("IPv6")
    # every problem at once, the bad domain name by its line
    expect(page.locator('[data-error-for="domain_names"]')).to_contain_text(
        f'Line 2: "cam*.{DOMAIN}" may use'
    )
    # what was typed is kept
    expect(page.locator("#id_forward_host")).to_have_value("http://127.0.0.1:8080/")

    page.fill("#id_domain_names", DOMAIN)
    page.fill("#id_forward_host", "127.0.0.1:8080")
    page.click("#save-proxy-host")
    expect(host_error).to_contain_text("put the port 8080 in the Port field")
    expect(host_error).not_to_contain_text("IPv6")
    assert portway.api("GET", "/api/nginx/proxy-hosts")[1] == []

    page.fill("#id_forward_host", " 127.0.0.1 ")
    page.fill("#id_forward_port", str(upstream.port))
    page.click("#save-proxy-host")
    expect(page).to_have_url(base + "/proxy-hosts")
    expect(page.locator("#proxy-hosts tbody tr")).to_contain_text(
        f"http://127.0.0.1:{upstream.port}"
    )
    wait_for(lambda: portway.upstream_of(DOMAIN) == "upstream-8080")
