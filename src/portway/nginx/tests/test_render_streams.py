"""The stream renderer and the stream context of nginx.conf, without nginx (fast); the
end-to-end proof with real TCP/UDP echo servers is portway/hosts/tests/test_streams_e2e.py."""

from __future__ import annotations

from pathlib import Path

from portway.conf import PortwayConfig
from portway.nginx import kinds
from portway.nginx.render import CertificateRef, Paths, Renderer, UpstreamResolver
from portway.nginx.render_stream import StreamSpec

CERT = CertificateRef(1, Path("/c.pem"), Path("/k.pem"))


def _renderer(bind: str = "127.0.0.1") -> Renderer:
    config = PortwayConfig(Path("/tmp/x"), 81, 80, 443, bind, True, "nginx", "", "DENY")
    return Renderer(config, Paths(Path("/tmp/x")), UpstreamResolver(["127.0.0.1:9"]))


def _lines(spec: StreamSpec, bind: str = "127.0.0.1") -> list[str]:
    config = kinds.render(_renderer(bind), spec)
    assert config.relative_path == f"hosts/stream-{spec.id}.conf"
    assert config.host_key == f"stream-{spec.id}"
    return [line.strip() for line in config.text().splitlines()]


def test_listen_lines_per_protocol():
    tcp = _lines(StreamSpec(1, 5000, "10.0.0.5", 5432))
    assert "listen 127.0.0.1:5000;" in tcp and not any("udp" in line for line in tcp)
    assert "proxy_pass 10.0.0.5:5432;" in tcp
    udp = _lines(StreamSpec(2, 5353, "10.0.0.5", 53, tcp_forwarding=False, udp_forwarding=True))
    assert "listen 127.0.0.1:5353 udp;" in udp and "listen 127.0.0.1:5353;" not in udp
    both = _lines(StreamSpec(3, 7000, "fd00::5", 7001, udp_forwarding=True))
    assert [line for line in both if line.startswith("listen")] == [
        "listen 127.0.0.1:7000;",
        "listen 127.0.0.1:7000 udp;",
    ]
    assert "proxy_pass [fd00::5]:7001;" in both


def test_every_address_without_a_bind_address():
    lines = _lines(StreamSpec(1, 5000, "10.0.0.5", 5432, udp_forwarding=True), bind="")
    assert [line for line in lines if line.startswith("listen")] == [
        "listen 0.0.0.0:5000;",
        "listen 0.0.0.0:5000 udp;",
    ]  # DISABLE_IPV6 is on in this config


def test_tls_termination_is_tcp_only():
    lines = _lines(StreamSpec(4, 6443, "db.lan", 5432, udp_forwarding=True, certificate=CERT))
    assert "listen 127.0.0.1:6443 ssl;" in lines
    assert "listen 127.0.0.1:6443 udp;" in lines
    assert "ssl_certificate /c.pem;" in lines and "ssl_certificate_key /k.pem;" in lines
    udp_only = StreamSpec(5, 6444, "db.lan", 1, False, True, certificate=CERT)
    assert not any(line.startswith("ssl_") for line in _lines(udp_only))


def test_unresolved_forwarding_host_is_resolved_per_connection():
    lines = _lines(StreamSpec(6, 5000, "nowhere.invalid", 22))
    assert "set $portway_upstream nowhere.invalid;" in lines
    assert "proxy_pass $portway_upstream:22;" in lines


def test_main_has_a_stream_context_only_with_streams():
    renderer = _renderer()
    http_only = renderer.main("g1", 0, http_kinds=kinds.prefixes("http")).text()
    assert "stream {" not in http_only
    for prefix in ("proxy", "redirection", "dead"):
        assert f"include hosts/{prefix}-*.conf;" in http_only
    assert "hosts/stream-" not in http_only
    text = renderer.main(
        "g1", 0, http_kinds=kinds.prefixes("http"), stream_kinds=kinds.prefixes("stream")
    ).text()
    stream = text[text.index("stream {") :]
    assert "include hosts/stream-*.conf;" in stream
    assert text.index("http {") < text.index("stream {")
