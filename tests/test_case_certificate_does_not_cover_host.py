"""Shared case certificate-does-not-cover-host: saved, but warned about everywhere.

A host whose certificate does not cover its names (or is expired, or not yet valid) is
saved (the admin may know better), and the API's `meta.certificate_warnings` (a list of
messages, beside NPM's `nginx_online`/`nginx_err`), the UI's host list and edit form say
what browsers will refuse, naming the names the certificate does cover.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from portway.testing.certs import make_leaf
from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]


def _upload(portway, nice_name: str, names: list[str], **validity) -> dict:  # noqa: ANN001
    issued = make_leaf(None, names, label=nice_name, **validity)
    return portway.upload_certificate(nice_name, issued.cert_pem, issued.key_pem())


def _host(portway, name: str, port: int, cert: dict) -> tuple[int, dict]:  # noqa: ANN001
    return portway.api(
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": [name],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": port,
            "certificate_id": cert["id"],
            "ssl_forced": True,
        },
    )


def _login(page, portway) -> str:  # noqa: ANN001
    base = f"http://127.0.0.1:{portway.admin_port}"
    page.goto(base + "/login")
    page.fill("#id_email", ADMIN_EMAIL)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    return base


def test_certificate_does_not_cover_host(portway, upstreams, browser_page):
    from playwright.sync_api import expect

    app = upstreams("app")
    now = datetime.now(UTC)
    other = _upload(portway, "other only", ["other.example.test"])
    wildcard = _upload(portway, "wildcard", ["*.example.test"])
    expired = _upload(
        portway,
        "expired",
        ["old.example.test"],
        not_before=now - timedelta(days=100),
        not_after=now - timedelta(days=10),
    )
    future = _upload(
        portway, "future", ["new.example.test"], not_before=now + timedelta(days=10), days=90
    )

    # the case: saved, with a warning naming what the certificate covers
    status, host = _host(portway, "www.example.test", app.port, other)
    assert status == 201, host
    assert host["certificate_id"] == other["id"] and host["ssl_forced"] is True
    (warning,) = host["meta"]["certificate_warnings"]
    assert "does not cover www.example.test" in warning and "other.example.test" in warning
    # nginx serves it as saved (with the certificate chosen)
    wait_for(lambda: portway.upstream_of("www.example.test", https=True) == "app")
    served = portway.served_certificate("www.example.test")
    assert served.subject.rfc4514_string() == "CN=other.example.test"

    # a wildcard covers one label, not the bare name nor two labels
    covered = _host(portway, "a.example.test", app.port, wildcard)[1]
    assert covered["meta"]["certificate_warnings"] == []
    assert (
        "does not cover"
        in _host(portway, "a.b.example.test", app.port, wildcard)[1]["meta"][
            "certificate_warnings"
        ][0]
    )

    status, old = _host(portway, "old.example.test", app.port, expired)
    assert status == 201
    assert [w for w in old["meta"]["certificate_warnings"] if "expired on" in w]
    assert not [w for w in old["meta"]["certificate_warnings"] if "does not cover" in w]
    status, new = _host(portway, "new.example.test", app.port, future)
    assert status == 201
    assert [w for w in new["meta"]["certificate_warnings"] if "is not valid before" in w]

    # a client cannot store a warning of its own; list and GET carry the same
    status, changed = portway.api(
        "PUT",
        f"/api/nginx/proxy-hosts/{host['id']}",
        {"meta": {"certificate_warnings": [], "mine": 1}},
    )
    assert status == 200 and changed["meta"]["mine"] == 1
    assert changed["meta"]["certificate_warnings"] == [warning]
    listed = {h["id"]: h for h in portway.api("GET", "/api/nginx/proxy-hosts")[1]}
    assert listed[host["id"]]["meta"]["certificate_warnings"] == [warning]
    assert listed[old["id"]]["meta"]["certificate_warnings"] == old["meta"]["certificate_warnings"]

    # fixing it clears the warning
    status, fixed = portway.api(
        "PUT", f"/api/nginx/proxy-hosts/{host['id']}", {"certificate_id": wildcard["id"]}
    )
    assert status == 200 and fixed["meta"]["certificate_warnings"] == []
    portway.api("PUT", f"/api/nginx/proxy-hosts/{host['id']}", {"certificate_id": other["id"]})

    # the UI: host list and edit form
    page = browser_page
    base = _login(page, portway)
    page.goto(base + "/proxy-hosts")
    row = page.locator(f"#host-{host['id']}")
    expect(row.locator("[data-certificate-warning]")).to_contain_text(
        "does not cover www.example.test; it covers other.example.test"
    )
    expect(page.locator(f"#host-{old['id']} [data-certificate-warning]")).to_contain_text(
        "expired on"
    )
    expect(page.locator(f"#host-{new['id']} [data-certificate-warning]")).to_contain_text(
        "is not valid before"
    )
    expect(page.locator(f"#host-{covered['id']}")).to_contain_text("wildcard")
    expect(page.locator(f"#host-{covered['id']} [data-certificate-warning]")).to_have_count(0)

    page.goto(base + f"/proxy-hosts/{host['id']}")
    alert = page.locator("[data-certificate-warnings]")
    expect(alert).to_contain_text("does not cover www.example.test")
    expect(alert).to_contain_text("other.example.test")
    # saving from the form keeps the host and repeats the warning
    page.click("#save-proxy-host")
    expect(page).to_have_url(re.compile(r"/proxy-hosts$"))
    expect(page.locator("#messages")).to_contain_text("does not cover www.example.test")
    page.goto(base + f"/proxy-hosts/{old['id']}")
    expect(page.locator("[data-certificate-warnings]")).to_contain_text("expired on")
