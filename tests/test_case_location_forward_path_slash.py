"""Shared case location-forward-path-slash: a location's forward path keeps its slash.

`/sub/index.html` under a location `/sub/` with forward path `/other` reached the
upstream as `/otherindex.html`. Every way of writing the two paths maps the rest of the
URI after one slash, query strings kept, and a prefix location matches whole path
segments only (`/sub` never captures `/subway`).
"""

from __future__ import annotations

import json

import pytest

from portway.testing.process import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]


def _location(path: str, port: int, forward_path: str = "", host: str = "127.0.0.1") -> dict:
    return {
        "path": path,
        "forward_scheme": "http",
        "forward_host": host,
        "forward_port": port,
        "forward_path": forward_path,
    }


def test_location_forward_path_slash(portway, upstreams, dns_server):
    main, other = upstreams("main"), upstreams("other")
    locations = [
        _location("/sub/", other.port, "/other"),  # the case as reported
        _location("/two", other.port, "/other/"),
        _location("/three/", other.port, "/other/"),
        _location("/four", other.port, "/other"),
        _location("/plain", other.port),
        _location("^~ /pre", other.port, "/x"),
        _location("= /exact", other.port, "/e"),
        _location("~ ^/re/", other.port, "/r"),
        # resolved per request (not in DNS at apply time): mapped by a rewrite instead
        _location("/late", other.port, "/other", host="later.test"),
    ]
    created = portway.create_proxy_host(["loc.example.test"], main.port, locations=locations)
    assert created["locations"][0]["forward_path"] == "/other"
    dns_server.records["later.test"] = "127.0.0.1"
    wait_for(lambda: portway.upstream_of("loc.example.test") == "main")
    portway.wait_applied()

    def reaches(path: str) -> tuple[str, str]:
        status, _, body = portway.http("loc.example.test", path)
        assert status == 200, (path, status)
        answer = json.loads(body)
        return answer["upstream"], answer["path"]

    expected = {
        "/sub/index.html": ("other", "/other/index.html"),
        "/sub/a/b?x=1": ("other", "/other/a/b?x=1"),
        "/sub/": ("other", "/other/"),
        "/subway": ("main", "/subway"),
        "/two/index.html": ("other", "/other/index.html"),
        "/two/a/b?x=1": ("other", "/other/a/b?x=1"),
        "/two": ("other", "/other/"),
        "/twofold": ("main", "/twofold"),
        "/three/index.html": ("other", "/other/index.html"),
        "/four/index.html": ("other", "/other/index.html"),
        "/four?x=1": ("other", "/other?x=1"),
        "/plain/a?x=1": ("other", "/plain/a?x=1"),
        "/plain": ("other", "/plain"),
        "/plainly": ("main", "/plainly"),
        "/pre/a?x=1": ("other", "/x/a?x=1"),
        "/pre": ("other", "/x"),
        "/exact?x=1": ("other", "/e?x=1"),
        "/exact/more": ("main", "/exact/more"),
        "/re/a?x=1": ("other", "/r/re/a?x=1"),
        "/late/a/b?x=1": ("other", "/other/a/b?x=1"),
        "/late": ("other", "/other"),
        "/lately": ("main", "/lately"),
    }
    wait_for(lambda: reaches("/late") == ("other", "/other"), timeout=30)
    assert {path: reaches(path) for path in expected} == expected
    # a location written with its trailing slash: nginx sends `/sub` on to `/sub/`
    status, headers, _ = portway.http("loc.example.test", "/sub")
    assert status == 301 and headers["location"].endswith("/sub/")


def test_location_forward_path_slash_same_location_twice_is_refused(portway, upstreams):
    main = upstreams("main")
    for first, second in (("/api", "/api/"), ("/api", "= /api"), ("/api/", "^~ /api")):
        status, data = portway.api(
            "POST",
            "/api/nginx/proxy-hosts",
            {
                "domain_names": ["twice.example.test"],
                "forward_scheme": "http",
                "forward_host": "127.0.0.1",
                "forward_port": main.port,
                "locations": [_location(first, main.port), _location(second, main.port)],
            },
        )
        assert status == 400, data
        assert "data/locations" in data["error"]["message"]
        assert "same location" in data["error"]["message"]
