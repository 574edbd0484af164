"""Cloudflare's origin-pull CA shipped with Portway, and the administrator's replacement
(fast: the files and the rendered host; real nginx with a stand-in CA is
test_cloudflare_only_e2e.py)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import NameOID

from portway.conf import PortwayConfig
from portway.nginx import kinds
from portway.nginx.render import Paths, Renderer, UpstreamResolver

SHIPPED = Path(str(files("portway.access") / "data" / "cloudflare-origin-pull-ca.pem"))


def _cloudflare_only_host() -> SimpleNamespace:
    """A proxy host row as the engine reads it: Cloudflare only, with a certificate."""
    cert = SimpleNamespace(pk=1, fullchain_path=Path("/c.pem"), key_path=Path("/k.pem"))
    return SimpleNamespace(
        pk=5,
        domain_names=["cf.example"],
        forward_scheme="http",
        forward_host="127.0.0.1",
        forward_port=8080,
        caching_enabled=False,
        allow_websocket_upgrade=False,
        trust_forwarded_proto=False,
        cloudflare_only=True,
        access_list_id=0,
        locations=[],
        certificate=cert,
        ssl_forced=False,
        hsts_enabled=False,
        hsts_subdomains=False,
        http2_support=False,
        block_exploits=False,
        advanced_config="",
    )


def _rendered(data: Path) -> str:
    config = PortwayConfig(data, 81, 80, 443, "127.0.0.1", True, "nginx", "", "DENY")
    renderer = Renderer(config, Paths(data), UpstreamResolver(["127.0.0.1:9"]))
    return kinds.render(renderer, kinds.proxy_spec(_cloudflare_only_host())).text()


def test_shipped_ca_is_cloudflares_origin_pull_ca() -> None:
    assert SHIPPED.is_file(), "portway/access/data must ship the origin-pull CA"
    (ca,) = x509.load_pem_x509_certificates(SHIPPED.read_bytes())
    subject = {a.oid: a.value for a in ca.subject}
    assert subject[NameOID.COMMON_NAME] == "origin-pull.cloudflare.net"
    assert subject[NameOID.ORGANIZATION_NAME] == "CloudFlare, Inc."
    assert subject[NameOID.ORGANIZATIONAL_UNIT_NAME] == "Origin Pull"
    assert (
        ca.issuer == ca.subject
        and ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    )
    # self-signed: its own key verifies its signature (raises otherwise)
    ca.public_key().verify(
        ca.signature, ca.tbs_certificate_bytes, padding.PKCS1v15(), ca.signature_hash_algorithm
    )
    assert ca.not_valid_after_utc.year == 2029


def test_cloudflare_only_host_uses_the_shipped_ca_until_the_admin_puts_one(settings) -> None:
    data = Path(settings.DATA_DIR)  # a fresh directory per test (conftest)
    assert kinds.origin_pull_ca() == SHIPPED.resolve()
    assert f"ssl_client_certificate {SHIPPED.resolve()};" in _rendered(data)

    own = data / "cloudflare-origin-pull-ca.pem"
    own.write_bytes(SHIPPED.read_bytes())
    assert kinds.origin_pull_ca() == own
    text = _rendered(data)
    assert f"ssl_client_certificate {own};" in text and str(SHIPPED.resolve()) not in text
