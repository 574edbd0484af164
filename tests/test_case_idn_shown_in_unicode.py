"""Shared case idn-shown-in-unicode: people see and search names in their own script.

nginx's config and the NPM API carry the punycode form (`xn--bcher-kva.example.test`);
the UI's host list, edit page title and edit form show `bücher.example.test`, and a
search typed in Unicode (API `?query=`, the UI's search box) finds the host.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

UNICODE = "bücher.example.test"
PUNYCODE = "xn--bcher-kva.example.test"


def test_idn_shown_in_unicode(portway, upstreams, browser_page):
    from playwright.sync_api import expect

    app = upstreams("app")
    host = portway.create_proxy_host([UNICODE], app.port)
    other = portway.create_proxy_host(["plain.example.test"], app.port)
    assert host["domain_names"] == [PUNYCODE]
    wait_for(lambda: portway.upstream_of(PUNYCODE) == "app")

    # nginx's config names the punycode form: a server block's server_name, or with the
    # fast path the router's routes (the snapshot nginx loads into shared memory)
    nginx_dir = Path(portway.data_dir) / "nginx"
    if portway.api("GET", "/api/nginx/status")[1]["fast_path"]["enabled"]:
        routes = json.loads((nginx_dir / "fastpath.json").read_text())["routes"]
        assert PUNYCODE in routes and UNICODE not in routes
    else:
        live = nginx_dir / "live" / "hosts" / f"proxy-{host['id']}.conf"
        assert f"server_name {PUNYCODE};" in live.read_text()

    def found(query: str) -> list[int]:
        status, hosts = portway.api("GET", f"/api/nginx/proxy-hosts?query={quote(query)}")
        assert status == 200, hosts
        return [h["id"] for h in hosts]

    for query in ("bücher", "BÜCHER", "ücher.exa", PUNYCODE, "xn--bcher", UNICODE):
        assert found(query) == [host["id"]], query
    assert set(found("example.test")) == {host["id"], other["id"]}

    page = browser_page
    base = f"http://127.0.0.1:{portway.admin_port}"
    page.goto(base + "/login")
    page.fill("#id_email", ADMIN_EMAIL)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    expect(page.locator("#recent-activity")).to_contain_text(f"created proxy host {UNICODE}")

    page.goto(base + "/proxy-hosts")
    link = page.locator(f"#host-{host['id']} [data-domain='{PUNYCODE}']")
    expect(link).to_have_text(UNICODE)
    expect(link).to_have_attribute("title", PUNYCODE)
    expect(link).to_have_attribute("href", f"http://{PUNYCODE}")

    # the certificates list and the form's certificate choices show Unicode too
    from portway.testing.certs import make_leaf

    issued = make_leaf(None, [PUNYCODE])
    cert = portway.upload_certificate("books", issued.cert_pem, issued.key_pem())
    assert cert["domain_names"] == [PUNYCODE]
    page.goto(base + "/certificates")
    expect(page.locator("#certificates")).to_contain_text(UNICODE)

    page.goto(base + "/proxy-hosts")
    # the UI search, typed in Unicode
    page.fill("#host-search", "büch")
    expect(page.locator("#proxy-hosts tbody tr")).to_have_count(1)
    expect(page.locator("#proxy-hosts tbody tr")).to_contain_text(UNICODE)
    page.fill("#host-search", "")
    expect(page.locator("#proxy-hosts tbody tr")).to_have_count(2)

    page.goto(base + f"/proxy-hosts/{host['id']}")
    expect(page).to_have_title(re.compile(f"Edit {UNICODE}"))
    expect(page.locator("h2.page-title, .page-title").first).to_contain_text(UNICODE)
    expect(page.locator("#id_domain_names")).to_have_value(UNICODE)
    expect(page.locator("#id_certificate_id")).to_contain_text(f"books ({UNICODE})")
    # saving the form unchanged keeps the same name
    page.click("#save-proxy-host")
    expect(page).to_have_url(re.compile(r"/proxy-hosts$"))
    expect(page.locator("#messages")).to_contain_text(f"Proxy host {UNICODE} saved.")
    saved = portway.api("GET", f"/api/nginx/proxy-hosts/{host['id']}")[1]
    assert saved["domain_names"] == [PUNYCODE]
