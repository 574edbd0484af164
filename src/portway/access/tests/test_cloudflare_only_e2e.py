"""Cloudflare only (Authenticated Origin Pulls) through real nginx.

A test CA stands in for Cloudflare's origin-pull CA (installed as the administrator's
replacement file in the data directory); a client certificate it signed stands in for
the one Cloudflare presents. Anyone else, over HTTPS or plain HTTP, gets a 403 that says
why; HTTP-01 challenges still get through; other hosts are unaffected.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portway.testing.certs import Issued, make_ca, make_key, make_leaf
from portway.testing.process import PortwayProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]


def client_certificate(ca: Issued, cn: str) -> Issued:
    """A TLS client certificate (clientAuth) signed by `ca`."""
    key = make_key("ec", f"client:{cn}", 256)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key, root=ca.cert)


def https_get(port: int, name: str, client: Issued | None, tmp: Path) -> tuple[int, bytes]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if client is not None:
        cert_file, key_file = tmp / "client.pem", tmp / "client.key"
        cert_file.write_bytes(client.cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(client.key_pem())
        context.load_cert_chain(cert_file, key_file)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        conn = http.client.HTTPConnection(name)
        conn.sock = tls
        conn.request("GET", "/p", headers={"Host": name})
        response = conn.getresponse()
        return response.status, response.read()


def test_cloudflare_only_requires_origin_pull_certificate(tmp_path, upstreams):
    cloudflare = make_ca("Test stand-in for Cloudflare Origin Pull CA")
    stranger = make_ca("Some other CA")
    data = tmp_path / "data"
    data.mkdir()
    (data / "cloudflare-origin-pull-ca.pem").write_bytes(cloudflare.cert_pem)
    with PortwayProcess(data) as portway:
        app = upstreams("app")
        issued = make_leaf(None, ["cf.example.test", "open.example.test"])
        cert = portway.upload_certificate("site", issued.cert_pem, issued.key_pem())
        host = portway.create_proxy_host(
            ["cf.example.test"], app.port, certificate_id=cert["id"], cloudflare_only=True
        )
        assert host["cloudflare_only"] is True
        portway.create_proxy_host(["open.example.test"], app.port, certificate_id=cert["id"])
        edge = client_certificate(cloudflare, "origin-pull.example")
        wait_for(lambda: https_get(portway.https_port, "cf.example.test", edge, tmp_path)[0] == 200)
        portway.wait_applied()

        status, body = https_get(portway.https_port, "cf.example.test", edge, tmp_path)
        assert status == 200 and json.loads(body)["upstream"] == "app"
        for client in (None, client_certificate(stranger, "impostor")):
            status, body = https_get(portway.https_port, "cf.example.test", client, tmp_path)
            assert status == 403 and b"only through Cloudflare" in body
        status, _, body = portway.http("cf.example.test", "/p")
        assert status == 403 and b"only through Cloudflare" in body
        assert portway.http("cf.example.test", "/.well-known/acme-challenge/tok")[0] == 404
        # another host on the same port needs no client certificate
        assert https_get(portway.https_port, "open.example.test", None, tmp_path)[0] == 200
