"""The redirection and 404 host renderers, without nginx (fast); the end-to-end proof
through real nginx is portway/hosts/tests/test_kinds_e2e.py."""

from __future__ import annotations

from pathlib import Path

from portway.access.render import AccessSpec
from portway.conf import PortwayConfig
from portway.nginx import kinds
from portway.nginx.render import CertificateRef, Paths, Renderer, UpstreamResolver
from portway.nginx.render_dead import DeadHostSpec
from portway.nginx.render_redirection import RedirectionHostSpec

CERT = CertificateRef(1, Path("/c.pem"), Path("/k.pem"))


def _renderer() -> Renderer:
    config = PortwayConfig(Path("/tmp/x"), 81, 80, 443, "127.0.0.1", True, "nginx", "", "DENY")
    return Renderer(config, Paths(Path("/tmp/x")), UpstreamResolver(["127.0.0.1:9"]))


def _text(spec) -> str:  # noqa: ANN001
    config = kinds.render(_renderer(), spec)
    assert config.relative_path == f"hosts/{spec.key}.conf" and config.host_key == spec.key
    return config.text()


def test_redirect_target_per_option():
    auto = RedirectionHostSpec(3, ("r.example",), 308, "auto", "t.example:8443/base", True)
    assert "return 308 $scheme://t.example:8443/base$request_uri;" in _text(auto)
    fixed = RedirectionHostSpec(4, ("r.example",), 301, "https", "t.example", False)
    assert "return 301 https://t.example;" in _text(fixed)


def test_redirection_shares_the_proxy_host_head():
    spec = RedirectionHostSpec(
        3,
        ("r.example",),
        302,
        "http",
        "t.example",
        certificate=CERT,
        ssl_forced=True,
        hsts_enabled=True,
        http2_support=True,
        block_exploits=True,
    )
    text = _text(spec)
    assert "listen 127.0.0.1:443 ssl http2;" in text
    assert "ssl_certificate /c.pem;" in text
    assert "location ^~ /.well-known/acme-challenge/" in text
    assert "Strict-Transport-Security" in text and "Block common exploits" in text
    # the challenge location and Force SSL come before the redirect
    assert text.index("acme-challenge") < text.index("return 302")
    assert text.index("Force SSL") < text.index("return 302")


def test_dead_host_answers_404_and_leaves_root_to_advanced_config():
    assert "return 404;" in _text(DeadHostSpec(2, ("d.example",), certificate=CERT))
    own = DeadHostSpec(2, ("d.example",), advanced_config="location / { return 410; }")
    text = _text(own)
    assert "return 410;" in text and "return 404;" not in text
    assert "# Advanced config (administrator)" in text


def test_redirect_waits_for_the_access_list():
    """`return` runs before nginx's access phase: with a list the redirect comes from a
    named location reached through try_files, after allow/deny and auth_basic."""
    access = AccessSpec(7, False, False, (("allow", "127.0.0.2"),), user_file=Path("/a/7.htpasswd"))
    spec = RedirectionHostSpec(3, ("r.example",), 301, "https", "t.example", True, access=access)
    text = _text(spec)
    assert "allow 127.0.0.2;" in text and "deny all;" in text
    assert "auth_basic_user_file /a/7.htpasswd;" in text
    assert "try_files /.portway-redirect-after-access-check @portway_redirect;" in text
    named = text[text.index("location @portway_redirect") :]
    assert "return 301 https://t.example$request_uri;" in named
    assert text.count("return 301") == 1
    # the challenge location lets everyone through
    challenge = text[text.index("location ^~ /.well-known/acme-challenge/") :]
    assert "auth_basic off;" in challenge and "allow all;" in challenge
    # without a list: the plain redirect in location /
    plain = RedirectionHostSpec(3, ("r.example",), 301, "https", "t.example")
    assert "@portway_redirect" not in _text(plain)
