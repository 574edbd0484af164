"""The club's story, end to end through a real nginx (issue: Portway core).

An API container and a Jupyter behind one machine's HTTP/HTTPS ports, routed by name,
HTTPS from an uploaded Cloudflare-Origin-style wildcard certificate; any other name gets
the default site and never another host's certificate or content.
"""

from __future__ import annotations

import socket
import ssl

import pytest
from cryptography.x509.oid import NameOID

from portway.testing import certs
from portway.testing.process import wait_for

pytestmark = pytest.mark.slow


def _cn(cert) -> str:  # noqa: ANN001
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


@pytest.fixture
def club(portway, upstreams):
    """Two upstreams, the wildcard certificate and both proxy hosts, all live."""
    shuttle, jupyter = upstreams("shuttle"), upstreams("jupyter")
    origin = certs.cloudflare_origin(["club.example", "*.club.example"])
    cert = portway.upload_certificate("club wildcard", origin.cert_pem, origin.key_pem())
    assert cert["domain_names"] == ["*.club.example", "club.example"] or set(
        cert["domain_names"]
    ) == {"club.example", "*.club.example"}
    options = {
        "certificate_id": cert["id"],
        "allow_websocket_upgrade": True,
        "ssl_forced": True,
        "hsts_enabled": True,
        "http2_support": True,
        "block_exploits": True,
    }
    hosts = {
        "shuttle": portway.create_proxy_host(["shuttle.club.example"], shuttle.port, **options),
        "jupyter": portway.create_proxy_host(["jupyter.club.example"], jupyter.port, **options),
    }
    for host in hosts.values():
        assert host["meta"]["nginx_online"] is True, host["meta"]
        assert host["ssl_forced"] and host["hsts_enabled"] and host["http2_support"]
    portway.wait_applied()
    return {"origin": origin, "cert": cert, "hosts": hosts}


def test_each_name_reaches_its_upstream_over_https_with_the_uploaded_certificate(portway, club):
    for name in ("shuttle", "jupyter"):
        domain = f"{name}.club.example"
        wait_for(lambda d=domain: portway.upstream_of(d, https=True))
        assert portway.upstream_of(domain, https=True) == name
        served, alpn = portway.tls_handshake(domain)
        assert served.serial_number == club["origin"].cert.serial_number
        assert alpn == "h2"
    # the upstream learns the original scheme
    status, _, body = portway.http("shuttle.club.example", "/x?y=1", https=True)
    assert status == 200 and b'"x_forwarded_proto": "https"' in body and b'"/x?y=1"' in body


def test_plain_http_is_redirected_and_hsts_is_sent(portway, club):
    status, headers, _ = portway.http("shuttle.club.example", "/path?q=1")
    assert status == 301
    # HTTPS is on a high port here: the redirect keeps it (PORTWAY_PUBLIC_HTTPS_PORT)
    assert headers["location"] == f"https://shuttle.club.example:{portway.https_port}/path?q=1"
    status, headers, _ = portway.http("jupyter.club.example", "/", https=True)
    assert status == 200
    assert headers["strict-transport-security"] == "max-age=63072000; preload"


def test_websocket_upgrade_is_proxied(portway, club):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", portway.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="jupyter.club.example") as tls,
    ):
        tls.sendall(
            b"GET /api/kernels/1/channels HTTP/1.1\r\nHost: jupyter.club.example\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        data = b""
        while b"upgraded:" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 101")
    assert b"upgraded:jupyter" in data


@pytest.mark.parametrize("sni", ["unknown.example.org", "club.example", None])
def test_other_names_get_the_default_site_and_never_a_hosts_certificate(portway, club, sni):
    served = portway.served_certificate(sni)
    if sni == "club.example":
        # club.example is covered by the certificate but no host serves it
        assert served.serial_number != club["origin"].cert.serial_number
    assert _cn(served) == "portway-default"
    status, _, body = portway.http(sni or "127.0.0.1", "/", https=True, sni=sni)
    assert status == 200 and b"Congratulations" in body
    for host in ("unknown.example.org", "club.example"):
        status, _, body = portway.http(host, "/")
        assert status == 200 and b"Congratulations" in body


def test_disabling_a_host_stops_it_being_served(portway, club):
    host = club["hosts"]["jupyter"]
    assert portway.api("POST", f"/api/nginx/proxy-hosts/{host['id']}/disable")[1] is True
    portway.wait_applied()
    wait_for(lambda: portway.upstream_of("jupyter.club.example", https=True) is None)
    assert _cn(portway.served_certificate("jupyter.club.example")) == "portway-default"
    assert portway.upstream_of("shuttle.club.example", https=True) == "shuttle"
    assert portway.api("POST", f"/api/nginx/proxy-hosts/{host['id']}/enable")[1] is True
    wait_for(lambda: portway.upstream_of("jupyter.club.example", https=True) == "jupyter")


@pytest.mark.e2e_db
def test_config_is_rebuilt_from_the_database_at_start(portway, club):
    portway.restart()
    assert portway.upstream_of("shuttle.club.example", https=True) == "shuttle"
    assert portway.served_certificate("jupyter.club.example").serial_number == (
        club["origin"].cert.serial_number
    )


def test_private_key_is_stored_0600_and_never_returned(portway, club):
    import stat

    key_files = list((portway.data_dir / "certificates").rglob("privkey.pem"))
    assert key_files
    # the database holds password hashes and sessions: owner-only as well
    database = portway.data_dir / "database.sqlite"
    if database.exists():
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for path in key_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for path in ("/api/nginx/certificates", f"/api/nginx/certificates/{club['cert']['id']}"):
        _, body = portway.api("GET", path + "?expand=proxy_hosts,owner")
        assert "PRIVATE KEY" not in str(body)
    assert "PRIVATE KEY" not in portway.log()
