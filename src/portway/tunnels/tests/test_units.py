"""Pure parts: the tunnel renderer and the client's command-line parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from portway.conf import PortwayConfig
from portway.nginx import kinds
from portway.nginx.render import CertificateRef, Paths, Renderer, UpstreamResolver
from portway.nginx.render_tunnel import TunnelHostSpec
from portway.tunnels.client import TunnelError, parse_listen, parse_resolve, parse_url


def _renderer(**config: object) -> Renderer:
    settings = PortwayConfig(Path("/tmp/x"), 81, 80, 443, "127.0.0.1", True, "nginx", "", "DENY")
    if config:
        from dataclasses import replace

        settings = replace(settings, **config)
    return Renderer(settings, Paths(Path("/tmp/x")), UpstreamResolver(["127.0.0.1:9"]))


def test_tunnel_server_block_hands_only_upgrades_to_the_service():
    spec = TunnelHostSpec(
        4,
        ("db.example.com",),
        Path("/tmp/x/tunnels/service.sock"),
        certificate=CertificateRef(1, Path("/c/full.pem"), Path("/c/key.pem")),
    )
    config = kinds.render(_renderer(), spec)
    assert config.relative_path == "hosts/tunnel-4.conf" and config.host_key == "tunnel-4"
    text = config.text()
    assert "listen 127.0.0.1:443 ssl;" in text and "server_name db.example.com;" in text
    assert "if ( $http_upgrade !~* ^websocket$ ) {\n            return 404;" in text
    assert "proxy_pass http://unix:/tmp/x/tunnels/service.sock:;" in text
    assert "proxy_set_header X-Portway-Tunnel 4;" in text
    assert "acme-challenge" in text


def test_worker_shutdown_timeout_is_rendered_only_when_set():
    assert "worker_shutdown_timeout" not in _renderer().main("g", 1).text()
    text = _renderer(worker_shutdown_timeout=3600).main("g", 1).text()
    assert "worker_shutdown_timeout 3600s;" in text


def test_client_urls_resolve_and_listen():
    assert parse_url("wss://db.example.com") == ("wss://db.example.com/", "db.example.com", 443)
    assert parse_url("db.example.com:8443")[2] == 8443
    assert parse_url("ws://a.example")[2] == 80
    for bad in ("https://a.example", "wss://a.example:99999", "wss://"):
        with pytest.raises(TunnelError):
            parse_url(bad)
    assert parse_resolve(["db.example.com:127.0.0.2"], "db.example.com", 443) == "127.0.0.2"
    assert parse_resolve(["db.example.com:8443:::1"], "db.example.com", 8443) == "::1"
    assert parse_resolve(["db.example.com:8443:127.0.0.3"], "db.example.com", 443) is None
    assert parse_resolve(["other.example:127.0.0.2"], "db.example.com", 443) is None
    with pytest.raises(TunnelError, match="not an IP address"):
        parse_resolve(["db.example.com:nowhere"], "db.example.com", 443)
    assert parse_listen("3306") == ("127.0.0.1", 3306)
    assert parse_listen("[::1]:2222") == ("::1", 2222)
    with pytest.raises(TunnelError):
        parse_listen("127.0.0.1:x")
