"""Proxy host options and the default-site setting, observed through a real nginx."""

from __future__ import annotations

import ssl

import pytest

from portway.testing.network import UpstreamServer
from portway.testing.plugin import missing_prerequisite
from portway.testing.process import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer("main") as server:
        yield server


@pytest.fixture(scope="module")
def pw(shared_portway):
    return shared_portway


def _live(pw, name: str, expected: str = "main", **kwargs) -> None:  # noqa: ANN001
    """Wait until `name` is served everywhere: answered, and the apply finished (the old
    workers nginx keeps for ~100 ms after a reload no longer accept)."""
    wait_for(lambda: pw.upstream_of(name, **kwargs) == expected)
    pw.wait_applied()


def test_custom_location_with_forward_path(pw, upstream):
    with UpstreamServer("api") as api:
        pw.create_proxy_host(
            ["loc.example.com"],
            upstream.port,
            locations=[
                {
                    "path": "/api",
                    "forward_scheme": "http",
                    "forward_host": "127.0.0.1",
                    "forward_port": api.port,
                    "forward_path": "/v2",
                }
            ],
        )
        _live(pw, "loc.example.com")
        status, _, body = pw.http("loc.example.com", "/api/users?id=1")
        assert status == 200
        assert b'"upstream": "api"' in body and b'"path": "/v2/users?id=1"' in body
        assert pw.upstream_of("loc.example.com", "/other") == "main"


def test_ipv6_upstream_is_bracketed(pw):
    try:
        six = UpstreamServer("six", address="::1")
    except OSError:
        missing_prerequisite("no IPv6 loopback (::1) on this machine")
    with six:
        host = pw.create_proxy_host(["six.example.com"], six.port, forward_host="[::1]")
        assert host["forward_host"] == "::1"
        _live(pw, "six.example.com", "six")


def test_block_common_exploits(pw, upstream):
    pw.create_proxy_host(["guard.example.com"], upstream.port, block_exploits=True)
    _live(pw, "guard.example.com")
    assert pw.http("guard.example.com", "/?id=1%20union%20select%20(1)")[0] == 403
    assert pw.http("guard.example.com", "/../../etc/passwd")[0] in (400, 403)
    assert pw.http("guard.example.com", "/?page=2")[0] == 200


def test_cache_assets(pw, upstream):
    pw.create_proxy_host(["cache.example.com"], upstream.port, caching_enabled=True)
    _live(pw, "cache.example.com")
    first = pw.http("cache.example.com", "/app.css")
    second = pw.http("cache.example.com", "/app.css")
    assert first[0] == 200 and first[1]["x-cache-status"] == "MISS"
    assert second[1]["x-cache-status"] == "HIT"


def test_trust_forwarded_proto(pw, upstream):
    pw.create_proxy_host(["trust.example.com"], upstream.port, trust_forwarded_proto=True)
    pw.create_proxy_host(["notrust.example.com"], upstream.port)
    _live(pw, "trust.example.com")
    _live(pw, "notrust.example.com")
    headers = {"X-Forwarded-Proto": "https"}
    assert b'"x_forwarded_proto": "https"' in pw.http("trust.example.com", headers=headers)[2]
    assert b'"x_forwarded_proto": "http"' in pw.http("notrust.example.com", headers=headers)[2]


def test_websocket_upgrade_off_by_default(pw, upstream):
    pw.create_proxy_host(["nows.example.com"], upstream.port)
    _live(pw, "nows.example.com")
    status, _, _ = pw.http(
        "nows.example.com", headers={"Upgrade": "websocket", "Connection": "Upgrade"}
    )
    assert status == 200  # the upgrade was not passed on


@pytest.mark.parametrize(
    ("value", "meta", "expect_status", "expect_body"),
    [
        ("404", {}, 404, None),
        ("redirect", {"redirect": "https://club.example/welcome"}, 307, None),
        ("html", {"html": "<h1>Nothing here</h1>"}, 200, b"<h1>Nothing here</h1>"),
        ("congratulations", {}, 200, b"Congratulations"),
    ],
)
def test_default_site(pw, value, meta, expect_status, expect_body):
    status, setting = pw.api("PUT", "/api/settings/default-site", {"value": value, "meta": meta})
    assert status == 200 and setting["value"] == value
    pw.wait_applied()
    for https in (False, True):
        status, headers, body = pw.http("nobody.example.net", "/x", https=https)
        assert status == expect_status
        if expect_body:
            assert expect_body in body
        if value == "redirect":
            assert headers["location"] == "https://club.example/welcome"


def test_default_site_444_drops_the_connection_and_refuses_tls(pw):
    assert pw.api("PUT", "/api/settings/default-site", {"value": "444"})[0] == 200
    pw.wait_applied()
    try:
        import http.client

        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            pw.http("nobody.example.net", "/")
        with pytest.raises(ssl.SSLError):
            pw.served_certificate("nobody.example.net")
    finally:
        pw.api("PUT", "/api/settings/default-site", {"value": "congratulations"})
        pw.wait_applied()


@pytest.mark.parametrize(
    "body",
    [
        {"value": "teapot"},
        {"value": "redirect"},
        {"value": "redirect", "meta": {"redirect": "javascript:alert(1)"}},
        {"value": "redirect", "meta": {"redirect": 'https://x.example/"; return 200 "x'}},
        {"value": "html", "meta": {"html": ""}},
        {"value": "404", "extra": 1},
    ],
)
def test_default_site_bad_input(pw, body):
    before = pw.api("GET", "/api/settings/default-site")[1]
    status, data = pw.api("PUT", "/api/settings/default-site", body)
    assert status == 400
    assert "data/" in data["error"]["message"] or "value" in data["error"]["message"]
    assert pw.api("GET", "/api/settings/default-site")[1] == before


def test_acme_challenge_is_served_ahead_of_advanced_config_and_exploit_rules(pw, upstream):
    """HTTP-01 must work for a host whose admin returns early or blocks odd clients."""
    challenge_dir = pw.data_dir / "acme-challenge" / ".well-known" / "acme-challenge"
    (challenge_dir / "tok-123_abc").write_text("tok-123_abc.thumbprint")
    (challenge_dir / "tok-123_abc").chmod(0o644)  # nginx's workers read it, whatever the umask
    pw.create_proxy_host(
        ["early.example.com"],
        upstream.port,
        block_exploits=True,
        advanced_config="return 418;",
    )
    wait_for(lambda: pw.http("early.example.com", "/")[0] == 418)
    status, _, body = pw.http(
        "early.example.com",
        "/.well-known/acme-challenge/tok-123_abc",
        headers={"User-Agent": "python-requests/2.31"},
    )
    assert (status, body) == (200, b"tok-123_abc.thumbprint")
    # names no host serves get it from the default server as well
    status, _, body = pw.http(
        "not-yet-a-host.example.com", "/.well-known/acme-challenge/tok-123_abc"
    )
    assert (status, body) == (200, b"tok-123_abc.thumbprint")
