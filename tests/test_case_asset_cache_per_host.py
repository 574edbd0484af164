"""Shared case asset-cache-per-host: a cached asset is never served for another site.

nginx's default cache key names the upstream (`$scheme$proxy_host$request_uri`), so two
sites behind one upstream shared entries. Portway keys on the scheme and host the client
asked for. A request with Authorization is never answered from the cache and its answer
is not stored (the upstream here does not mark it public).
"""

from __future__ import annotations

import json

import pytest

from portway.testing.certs import make_leaf
from portway.testing.process import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]


def _answer(portway, host: str, path: str, **kwargs) -> tuple[dict, str | None]:  # noqa: ANN001
    status, headers, body = portway.http(host, path, **kwargs)
    assert status == 200, (host, path, status, body)
    return json.loads(body), headers.get("x-cache-status")


def test_asset_cache_per_host(portway, upstreams):
    shared = upstreams("shared")
    issued = make_leaf(None, ["tenant-a.example.test", "tenant-b.example.test"])
    cert = portway.upload_certificate("tenants", issued.cert_pem, issued.key_pem())
    for name in ("tenant-a.example.test", "tenant-b.example.test"):
        portway.create_proxy_host(
            [name], shared.port, caching_enabled=True, certificate_id=cert["id"]
        )
    wait_for(lambda: portway.upstream_of("tenant-b.example.test") == "shared")
    portway.wait_applied()

    first, status = _answer(portway, "tenant-a.example.test", "/shared.js")
    assert first["host"] == "tenant-a.example.test" and status == "MISS"
    again, status = _answer(portway, "tenant-a.example.test", "/shared.js")
    assert again["host"] == "tenant-a.example.test" and status == "HIT"
    other, status = _answer(portway, "tenant-b.example.test", "/shared.js")
    assert other["host"] == "tenant-b.example.test" and status == "MISS"

    # the scheme is part of the key: the HTTPS answer is not the cached HTTP one
    secure, status = _answer(portway, "tenant-a.example.test", "/shared.js", https=True)
    assert secure["x_forwarded_proto"] == "https" and status == "MISS"

    # Authorization: bypass the cache, store nothing
    auth = {"Authorization": "Bearer secret-of-a"}
    private, status = _answer(portway, "tenant-a.example.test", "/private.css", headers=auth)
    assert private["authorization"] == "Bearer secret-of-a" and status == "BYPASS"
    public, status = _answer(portway, "tenant-a.example.test", "/private.css")
    assert public["authorization"] is None and status == "MISS"
    private, status = _answer(portway, "tenant-a.example.test", "/private.css", headers=auth)
    assert private["authorization"] == "Bearer secret-of-a" and status == "BYPASS"

    # pages are not cached at all (and say nothing about the cache)
    page, status = _answer(portway, "tenant-a.example.test", "/page")
    assert page["path"] == "/page" and status is None
