"""SNI with a trailing dot ("app.example.com.", the fully qualified form) gets the host's
certificate on the fast path, as nginx's own server-name lookup gives it on the reload
path (nginx drops the dot and lowercases the name); never another host's."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from portway.testing import certs

pytestmark = [pytest.mark.slow]


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:  # the default certificate: a subject only
        return [attribute.value for attribute in cert.subject]
    return san.value.get_values_for_type(x509.DNSName)


def test_sni_with_trailing_dot_gets_the_hosts_certificate(portway, upstreams, tmp_path: Path):
    leaf = certs.make_leaf(None, ["dot.sni.test"], key_type="ec", label="sni-dot")
    chain, key = leaf.write(tmp_path / "sni-dot")
    certificate = portway.upload_certificate(
        "sni-dot", Path(chain).read_bytes(), Path(key).read_bytes()
    )
    portway.create_proxy_host(
        ["dot.sni.test"], upstreams("app").port, certificate_id=certificate["id"]
    )
    portway.wait_applied()
    status = portway.api("GET", "/api/nginx/status")[1]
    assert status["fast_path"]["enabled"] is True, status
    assert _names(portway.served_certificate("dot.sni.test")) == ["dot.sni.test"]
    assert _names(portway.served_certificate("DOT.sni.test.")) == ["dot.sni.test"]
    assert portway.upstream_of("dot.sni.test.", https=True, sni="dot.sni.test.") == "app"
    # a name no host has, with or without the dot, keeps the default certificate
    assert "dot.sni.test" not in _names(portway.served_certificate("other.sni.test."))
