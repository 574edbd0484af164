"""Shared case advanced-add-header-kept: the admin's add_header lines survive every option.

nginx inherits `add_header` from the server level only into a location that has none of
its own (https://nginx.org/r/add_header); HSTS used to be added per location, so turning
it on dropped the administrator's server-level headers. Every combination of HSTS, Force
SSL, asset caching and custom locations (with and without their own add_header) is
checked on pages, assets, custom locations and the Force SSL redirect.
"""

from __future__ import annotations

import itertools

import pytest

from portway.testing.certs import make_leaf
from portway.testing.process import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

# (ssl_forced, hsts_enabled): HSTS needs Force SSL
SSL_OPTIONS = [(False, False), (True, False), (True, True)]
LOCATION_KINDS = ["none", "plain", "own-header"]
ADVANCED = 'add_header X-Custom-Server 1;\nadd_header X-Second "two words" always;'


def test_advanced_add_header_kept(portway, upstreams):
    app, other = upstreams("app"), upstreams("other")
    combos = list(itertools.product(SSL_OPTIONS, (False, True), LOCATION_KINDS))
    names = [f"hdr{index}.example.test" for index in range(len(combos))]
    issued = make_leaf(None, ["hdr.example.test", *names])
    cert = portway.upload_certificate("headers", issued.cert_pem, issued.key_pem())
    # the case as reported
    portway.create_proxy_host(
        ["hdr.example.test"],
        app.port,
        certificate_id=cert["id"],
        ssl_forced=True,
        hsts_enabled=True,
        advanced_config="add_header X-Custom-Server 1;",
    )
    for name, ((forced, hsts), caching, kind) in zip(names, combos, strict=True):
        locations = []
        if kind != "none":
            locations.append(
                {
                    "path": "/loc",
                    "forward_scheme": "http",
                    "forward_host": "127.0.0.1",
                    "forward_port": other.port,
                    "advanced_config": "add_header X-Location 1;" if kind == "own-header" else "",
                }
            )
        portway.create_proxy_host(
            [name],
            app.port,
            certificate_id=cert["id"],
            ssl_forced=forced,
            hsts_enabled=hsts,
            caching_enabled=caching,
            locations=locations,
            advanced_config=ADVANCED,
        )
    wait_for(lambda: portway.upstream_of(names[-1], https=True) == "app")
    portway.wait_applied()

    status, headers, _ = portway.http("hdr.example.test", "/", https=True)
    assert status == 200
    assert headers["x-custom-server"] == "1"
    assert headers["strict-transport-security"].startswith("max-age=63072000")

    problems = []
    for name, ((forced, hsts), caching, kind) in zip(names, combos, strict=True):
        paths = ["/", "/page", "/app.js"] + (["/loc/x", "/loc/x.css"] if kind != "none" else [])
        for path in paths:
            status, headers, _ = portway.http(name, path, https=True)
            wanted = {"x-custom-server": "1", "x-second": "two words"}
            if hsts:
                wanted["strict-transport-security"] = "max-age=63072000; preload"
            if kind == "own-header" and path.startswith("/loc"):
                wanted["x-location"] = "1"
            if caching and path.endswith((".js", ".css")):
                wanted["x-cache-status"] = "MISS"
            got = {key: headers.get(key) for key in wanted}
            if status != 200 or got != wanted:
                problems.append((name, forced, hsts, caching, kind, path, status, got))
        if forced:
            # the redirect carries them too ("always" headers)
            status, headers, _ = portway.http(name, "/page")
            if status != 301 or headers.get("x-second") != "two words":
                problems.append((name, "redirect", status, headers))
            if hsts and "strict-transport-security" not in headers:
                problems.append((name, "redirect without HSTS", headers))
    assert problems == []
