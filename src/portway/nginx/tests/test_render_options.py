"""Renderer pieces behind the proxy-host options, without nginx (fast).

The end-to-end proof is in tests/test_case_*.py (real nginx, real upstreams); these pin
the helpers' edge cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portway.certificates.models import Certificate
from portway.conf import PortwayConfig
from portway.core.fields import location_blocks, search_form, unicode_name
from portway.nginx.render import (
    CertificateRef,
    LocationSpec,
    Paths,
    ProxyHostSpec,
    Renderer,
    UpstreamResolver,
    top_level_directives,
    top_level_names,
)


@pytest.mark.parametrize(
    ("path", "blocks"),
    [
        ("/sub", [("=", "/sub"), ("", "/sub/")]),
        ("/sub/", [("", "/sub/")]),
        ("/sub//", [("", "/sub/")]),
        ("/", [("", "/")]),
        ("^~ /pre", [("=", "/pre"), ("^~", "/pre/")]),
        ("= /exact", [("=", "/exact")]),
        ("~* \\.php$", [("~*", "\\.php$")]),
    ],
)
def test_location_blocks(path, blocks):
    assert location_blocks(path) == blocks


def test_top_level_statements_skip_blocks_comments_and_quotes():
    text = (
        'add_header X-A "one; two" always;\n'
        "# add_header X-Commented 1;\n"
        "location /x { add_header X-Inner 1; if ($a) { return 403; } }\n"
        "add_header X-B 'it''s';  proxy_ssl_server_name on;\n"
        "if ($bad) { add_header X-In-If 1; }\n"
    )
    assert top_level_directives(text, "add_header") == [
        'add_header X-A "one; two" always;',
        "add_header X-B 'it''s';",
    ]
    assert top_level_names(text) == {"add_header", "proxy_ssl_server_name"}


def test_unicode_names():
    assert unicode_name("xn--bcher-kva.example") == "bücher.example"
    assert unicode_name("*.xn--bcher-kva.example") == "*.bücher.example"
    assert unicode_name("plain.example") == "plain.example"
    assert unicode_name("xn--invalid-.example") == "xn--invalid-.example"
    assert search_form("BÜCHER") == "bücher"
    assert search_form("bu\u0308cher") == "bücher"  # NFD typed, NFC stored


@pytest.mark.parametrize(
    ("cert_names", "name", "covered"),
    [
        (["www.example.test"], "www.example.test", True),
        (["*.example.test"], "www.example.test", True),
        (["*.example.test"], "example.test", False),
        (["*.example.test"], "a.b.example.test", False),
        (["*.example.test"], "*.example.test", True),
        (["www.example.test"], "*.example.test", False),
        (["other.example.test"], "www.example.test", False),
    ],
)
def test_certificate_covers(cert_names, name, covered):
    assert Certificate(domain_names=cert_names).covers(name) is covered


def _renderer() -> Renderer:
    config = PortwayConfig(Path("/tmp/x"), 81, 80, 443, "127.0.0.1", True, "nginx", "", "DENY")
    return Renderer(config, Paths(Path("/tmp/x")), UpstreamResolver(["127.0.0.1:9"]))


def _host(**options) -> ProxyHostSpec:
    cert = CertificateRef(1, Path("/c.pem"), Path("/k.pem"))
    return ProxyHostSpec(5, ("a.example",), "http", "127.0.0.1", 8080, cert, **options)


def test_no_portway_location_has_add_header():
    """add_header in a location would hide the server's (HSTS, the admin's) there."""
    text = (
        _renderer()
        .proxy_host(
            _host(
                ssl_forced=True,
                hsts_enabled=True,
                caching_enabled=True,
                advanced_config="add_header X-Admin 1;",
                locations=(LocationSpec("/sub", "http", "127.0.0.1", 9000, "/other"),),
            )
        )
        .text()
    )
    server_level = [line for line in text.splitlines() if line.startswith("    add_header")]
    assert len(server_level) == 3  # HSTS, X-Cache-Status, the admin's
    assert "        add_header" not in text


def test_location_with_own_headers_repeats_the_servers():
    location = LocationSpec("/sub", "http", "127.0.0.1", 9000, advanced_config="add_header L 1;")
    text = (
        _renderer()
        .proxy_host(
            _host(
                ssl_forced=True,
                hsts_enabled=True,
                advanced_config="add_header X-Admin 1;",
                locations=(location,),
            )
        )
        .text()
    )
    block = text.split("location /sub/ {", 1)[1].split("}", 1)[0]
    assert "add_header Strict-Transport-Security" in block
    assert "add_header X-Admin 1;" in block and "add_header L 1;" in block


def test_admin_settings_win_over_portways_single_directives():
    text = (
        _renderer()
        .proxy_host(
            _host(caching_enabled=True, advanced_config="proxy_ssl_server_name off;\nexpires 1h;")
        )
        .text()
    )
    assert text.count("proxy_ssl_server_name") == 1 and "proxy_ssl_server_name off;" in text
    assert text.count("expires") == 1
    assert "proxy_cache $portway_asset_cache;" in text
