"""Shared case force-ssl-behind-tls-proxy: Force SSL must not loop behind a TLS proxy.

Behind Cloudflare's Flexible mode or a cloudflared tunnel every request reaches nginx over
plain HTTP, marked `X-Forwarded-Proto: https`. With trust_forwarded_proto on, that request
is proxied; without the header (or with the option off) plain HTTP is redirected. The
redirect is decided at server level, so it also covers custom locations, cached assets
and the administrator's own locations.
"""

from __future__ import annotations

import json

import pytest

from portway.testing.certs import make_leaf
from portway.testing.process import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

HTTPS = {"X-Forwarded-Proto": "https"}


def test_force_ssl_behind_tls_proxy(portway, upstreams):
    app, other = upstreams("app"), upstreams("other")
    issued = make_leaf(None, ["cf.example.test", "direct.example.test"])
    cert = portway.upload_certificate("cf", issued.cert_pem, issued.key_pem())
    location = {
        "path": "/loc",
        "forward_scheme": "http",
        "forward_host": "127.0.0.1",
        "forward_port": other.port,
    }
    advanced = f"location /adv {{ proxy_pass http://127.0.0.1:{other.port}; }}"
    for name, trust in (("cf.example.test", True), ("direct.example.test", False)):
        portway.create_proxy_host(
            [name],
            app.port,
            certificate_id=cert["id"],
            ssl_forced=True,
            trust_forwarded_proto=trust,
            caching_enabled=True,
            locations=[location],
            advanced_config=advanced,
        )
    wait_for(lambda: portway.upstream_of("cf.example.test", "/p", headers=HTTPS) == "app")
    portway.wait_applied()

    # trusted: the outer proxy's https is believed, and passed on to the upstream
    for path, upstream in (("/p", "app"), ("/loc/x", "other"), ("/adv", "other"), ("/a.js", "app")):
        status, _, body = portway.http("cf.example.test", path, headers=HTTPS)
        assert status == 200, (path, status)
        answer = json.loads(body)
        assert answer["upstream"] == upstream and answer["x_forwarded_proto"] == "https"

    suffix = f":{portway.https_port}"
    for name, headers in (
        ("cf.example.test", {}),  # no header: a plain HTTP client
        ("cf.example.test", {"X-Forwarded-Proto": "http"}),
        ("direct.example.test", HTTPS),  # option off: the header changes nothing
        ("direct.example.test", {}),
    ):
        for path in ("/p?q=1", "/loc/x", "/adv", "/a.js"):
            status, response, _ = portway.http(name, path, headers=headers)
            assert status == 301, (name, headers, path, status)
            assert response["location"] == f"https://{name}{suffix}{path}"

    # HTTP-01 challenges stay reachable over plain HTTP (404: no such token here)
    assert portway.http("direct.example.test", "/.well-known/acme-challenge/tok")[0] == 404

    # over HTTPS itself both are proxied
    for name in ("cf.example.test", "direct.example.test"):
        assert portway.upstream_of(name, "/p", https=True) == "app"
