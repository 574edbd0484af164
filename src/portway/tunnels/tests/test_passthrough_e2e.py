"""SNI passthrough end to end: a real `portway serve`, real nginx on high ports, a real
TLS server started here with its own certificate, and real HTTPS clients.

What a user sees: the passthrough name answers with the target's own certificate and
bytes (the PROXY header first when asked for); the proxy hosts on the same HTTPS port
keep their certificate, HTTP/2, access lists and the client's real address (X-Real-IP,
X-Forwarded-For, the access log), also with a trusted-proxy real-IP setting; turning
the last passthrough off gives the plain listeners back.

Clients bind to 127.0.0.2 / 127.0.0.3 so their address differs from nginx's own
127.0.0.1 (what the http side would see if the front's address leaked through).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes

from portway.testing.certs import make_ca, make_leaf
from portway.testing.network import UpstreamServer
from portway.testing.process import PortwayProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

TUNNELS = "/api/portway/tunnels"
DOMAIN = "pt.example.test"
APP = f"app.{DOMAIN}"
DB = f"db.{DOMAIN}"
CLIENT = "127.0.0.2"
OTHER = "127.0.0.3"
FAR_CLIENT = "198.51.100.7"  # behind a trusted proxy (X-Forwarded-For)


class TlsTarget:
    """A TLS server on 127.0.0.1 with its own certificate: it answers the first line it
    reads with `target <PROXY line or ->: <line>`. A PROXY protocol v1 header before the
    handshake is read and reported, as a server configured for it would."""

    def __init__(self, certificate: bytes, key: bytes, directory) -> None:  # noqa: ANN001
        (directory / "target.pem").write_bytes(certificate)
        (directory / "target.key").write_bytes(key)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(directory / "target.pem", directory / "target.key")
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError), conn:
            conn.settimeout(10)
            proxy = "-"
            if conn.recv(6, socket.MSG_PEEK) == b"PROXY ":
                line = b""
                while not line.endswith(b"\r\n"):
                    line += conn.recv(1)
                proxy = line.decode().strip()
            with self.context.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                tls.sendall(f"target {proxy}: {data.decode().strip()}\n".encode())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("passthrough")
    portway_ca = make_ca("Portway Passthrough Test CA")
    leaf = make_leaf(portway_ca, [f"*.{DOMAIN}"])
    target_ca = make_ca("The Target's Own CA")
    target_leaf = make_leaf(target_ca, [DB])
    target = TlsTarget(target_leaf.fullchain_pem, target_leaf.key_pem(), base)
    upstream = UpstreamServer("app")
    process = PortwayProcess(base / "data")
    try:
        with upstream:
            process.start()
            cert = process.upload_certificate("pt", leaf.fullchain_pem, leaf.key_pem())
            yield {
                "pw": process,
                "cert": cert["id"],
                "leaf": leaf,
                "target": target,
                "target_leaf": target_leaf,
                "upstream": upstream,
            }
    finally:
        process.close()
        target.close()


def through_front(pw: PortwayProcess, sni: str, line: str, source: str = CLIENT):
    """(served certificate's SHA-256, answer line) of one TLS connection to the HTTPS
    port with SNI `sni`, from `source`."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(
            ("127.0.0.1", pw.https_port), timeout=10, source_address=(source, 0)
        ) as raw,
        context.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        fingerprint = tls.getpeercert(binary_form=True)
        tls.sendall(line.encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk
    from cryptography import x509

    cert = x509.load_der_x509_certificate(fingerprint)
    return cert.fingerprint(hashes.SHA256()), answer.decode().strip()


def seen(pw: PortwayProcess, source: str, headers: dict | None = None, https: bool = True):
    status, _, body = pw.http(APP, "/p", https=https, source=source, headers=headers or {})
    return status, (json.loads(body) if status == 200 else None)


def nginx_conf(pw: PortwayProcess) -> str:
    return (pw.data_dir / "nginx" / "live" / "nginx.conf").read_text()


def fingerprint(issued) -> bytes:  # noqa: ANN001
    return issued.cert.fingerprint(hashes.SHA256())


def test_passthrough_beside_proxy_hosts(setup):
    pw, target = setup["pw"], setup["target"]
    app = pw.create_proxy_host(
        [APP],
        setup["upstream"].port,
        certificate_id=setup["cert"],
        http2_support=True,
        allow_websocket_upgrade=True,
    )
    assert app["meta"]["nginx_online"] is True, app
    status, tunnel = pw.api(
        "POST",
        TUNNELS,
        {
            "domain_names": [DB],
            "forward_host": "127.0.0.1",
            "forward_port": target.port,
            "passthrough": True,
        },
    )
    assert status == 201, tunnel
    assert tunnel["passthrough"] is True and tunnel["proxy_protocol"] is False
    assert tunnel["certificate_id"] == 0 and tunnel["meta"]["nginx_online"] is True, tunnel
    pw.wait_applied()
    assert "ssl_preread" in (pw.data_dir / "nginx" / "live" / "front.conf").read_text()

    # the target's own certificate and bytes, end to end; no PROXY header by default
    served, answer = through_front(pw, DB, "hello")
    assert served == fingerprint(setup["target_leaf"])
    assert answer == "target -: hello"
    # one line per passthrough connection: who, which name, where to, bytes each way
    log = pw.data_dir / "logs" / "passthrough_access.log"
    # written when the connection has closed on both sides, into a file nginx opened at
    # start
    line = wait_for(lambda: (lines := log.read_text().splitlines()) and lines[-1])
    assert line.startswith(f"{CLIENT} [") and f'"{DB}" unix:' in line, line

    # the proxy host on the same port: its certificate, HTTP/2, the real client address
    cert, alpn = pw.tls_handshake(APP)
    assert cert.fingerprint(hashes.SHA256()) == fingerprint(setup["leaf"]) and alpn == "h2"
    status, body = seen(pw, CLIENT)
    assert status == 200 and body["x_real_ip"] == CLIENT, body
    assert body["x_forwarded_for"] == CLIENT and body["x_forwarded_proto"] == "https"
    # WebSockets pass the front too
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
    assert pw.http(APP, "/ws", https=True, source=CLIENT, headers=upgrade)[0] == 101
    log = (pw.data_dir / "logs" / f"proxy-{app['id']}_access.log").read_text()
    assert log.splitlines()[-1].startswith(f"{CLIENT} "), log[-300:]
    # plain HTTP is untouched; the passthrough name has no HTTP site (404, not the default)
    assert seen(pw, OTHER, https=False)[1]["x_real_ip"] == OTHER
    assert pw.http(DB, "/", source=CLIENT)[0] == 404
    # unknown names still get Portway's default certificate
    assert pw.served_certificate("nobody.example.test").subject.rfc4514_string() == (
        "CN=portway-default"
    )

    # the PROXY protocol to the target, when the target asks for it
    status, tunnel = pw.api("PUT", f"{TUNNELS}/{tunnel['id']}", {"proxy_protocol": True})
    assert status == 200 and tunnel["proxy_protocol"] is True, tunnel
    pw.wait_applied()
    served, answer = wait_for(
        lambda: (r := through_front(pw, DB, "again"))[1].startswith("target PROXY") and r
    )
    assert served == fingerprint(setup["target_leaf"])
    assert answer.startswith(f"target PROXY TCP4 {CLIENT} 127.0.0.1 ") and answer.endswith(
        ": again"
    ), answer

    # an access list still judges the real client behind the front
    status, listed = pw.api(
        "POST",
        "/api/nginx/access-lists",
        {"name": "one client", "clients": [{"address": CLIENT, "directive": "allow"}]},
    )
    assert status == 201, listed
    status, app = pw.api(
        "PUT", f"/api/nginx/proxy-hosts/{app['id']}", {"access_list_id": listed["id"]}
    )
    assert status == 200, app
    pw.wait_applied()
    assert seen(pw, CLIENT)[0] == 200
    assert seen(pw, OTHER)[0] == 403

    # a trusted proxy's header (real-IP setting) still works on the HTTPS port, and a
    # direct client cannot forge it
    status, body = pw.api(
        "PUT",
        "/api/settings/real-ip",
        {"value": "X-Forwarded-For", "meta": {"trusted_proxies": [f"{OTHER}/32"]}},
    )
    assert status == 200, body
    pw.wait_applied()
    forged = {"X-Forwarded-For": FAR_CLIENT}
    status, body = seen(pw, OTHER, forged)  # the proxy passes for FAR_CLIENT: not allowed
    assert status == 403
    pw.api("PUT", f"/api/nginx/proxy-hosts/{app['id']}", {"access_list_id": 0})
    pw.wait_applied()
    assert seen(pw, OTHER, forged)[1]["x_real_ip"] == FAR_CLIENT
    assert seen(pw, CLIENT, forged)[1]["x_real_ip"] == CLIENT
    assert seen(pw, OTHER, forged, https=False)[1]["x_real_ip"] == FAR_CLIENT
    assert seen(pw, CLIENT, forged, https=False)[1]["x_real_ip"] == CLIENT
    served, answer = through_front(pw, DB, "twins")
    assert served == fingerprint(setup["target_leaf"]) and answer.endswith(": twins")
    cert, alpn = pw.tls_handshake(APP)
    assert alpn == "h2"
    pw.api("PUT", "/api/settings/real-ip", {"value": "off", "meta": {}})

    # the last passthrough off: plain listeners again; on again: the front is back
    assert pw.api("POST", f"{TUNNELS}/{tunnel['id']}/disable")[0] == 200
    pw.wait_applied()
    assert "ssl_preread" not in nginx_conf(pw)
    assert not (pw.data_dir / "nginx" / "live" / "front.conf").exists()
    assert seen(pw, CLIENT)[1]["x_real_ip"] == CLIENT
    assert pw.tls_handshake(APP)[1] == "h2"
    assert pw.served_certificate(DB).subject.rfc4514_string() == "CN=portway-default"
    assert pw.api("POST", f"{TUNNELS}/{tunnel['id']}/enable")[0] == 200
    pw.wait_applied()
    served, _ = through_front(pw, DB, "back")
    assert served == fingerprint(setup["target_leaf"])
    assert seen(pw, CLIENT)[1]["x_real_ip"] == CLIENT
    # a restart (nginx started anew, its old sockets gone) serves the same
    pw.restart()
    served, _ = wait_for(lambda: through_front(pw, DB, "restarted"))
    assert served == fingerprint(setup["target_leaf"])
    assert seen(pw, CLIENT)[1]["x_real_ip"] == CLIENT
    assert pw.api("DELETE", f"{TUNNELS}/{tunnel['id']}")[0] == 200
    pw.wait_applied()
    assert "ssl_preread" not in nginx_conf(pw)


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"passthrough": "sometimes"}, "passthrough"),
        ({"proxy_protocol": True}, "proxy_protocol"),
        ({"passthrough": True, "certificate_id": "new"}, "certificate_id"),
        ({"passthrough": True, "proxy_protocol": [1]}, "proxy_protocol"),
    ],
)
def test_bad_passthrough_fields_are_400_naming_the_field(setup, fields, named):
    pw = setup["pw"]
    body = {
        "domain_names": [f"bad.{DOMAIN}"],
        "forward_host": "127.0.0.1",
        "forward_port": 5432,
        **fields,
    }
    status, answer = pw.api("POST", TUNNELS, body)
    assert status == 400, answer
    assert named in json.dumps(answer), answer
    assert not [t for t in pw.api("GET", TUNNELS)[1] if f"bad.{DOMAIN}" in t["domain_names"]]


def test_passthrough_names_share_the_name_index(setup):
    pw = setup["pw"]
    pw.create_proxy_host([f"taken.{DOMAIN}"], setup["upstream"].port)
    status, answer = pw.api(
        "POST",
        TUNNELS,
        {
            "domain_names": [f"taken.{DOMAIN}"],
            "forward_host": "127.0.0.1",
            "forward_port": 5432,
            "passthrough": True,
        },
    )
    assert status == 400 and "domain_names" in json.dumps(answer), answer


def test_turning_passthrough_on_drops_the_certificate(setup):
    pw = setup["pw"]
    status, tunnel = pw.api(
        "POST",
        TUNNELS,
        {
            "domain_names": [f"ws.{DOMAIN}"],
            "forward_host": "127.0.0.1",
            "forward_port": 5432,
            "certificate_id": setup["cert"],
        },
    )
    assert status == 201 and tunnel["certificate_id"] == setup["cert"], tunnel
    status, answer = pw.api(
        "PUT", f"{TUNNELS}/{tunnel['id']}", {"passthrough": True, "certificate_id": setup["cert"]}
    )
    assert status == 400 and "certificate_id" in json.dumps(answer), answer
    status, tunnel = pw.api("PUT", f"{TUNNELS}/{tunnel['id']}", {"passthrough": True})
    assert status == 200 and tunnel["passthrough"] and tunnel["certificate_id"] == 0, tunnel
    status, tunnel = pw.api("PUT", f"{TUNNELS}/{tunnel['id']}", {"passthrough": False})
    assert status == 200 and not tunnel["passthrough"], tunnel
    assert pw.api("DELETE", f"{TUNNELS}/{tunnel['id']}")[0] == 200


def test_ui_form_sets_passthrough(setup):
    pw = setup["pw"]
    session = pw.ui_session()
    form = {
        "domain_names": f"ui.{DOMAIN}",
        "forward_host": "127.0.0.1",
        "forward_port": str(setup["target"].port),
        "certificate_id": "0",
        "max_connections": "100",
        "proxy_protocol": "on",
    }
    refused = pw.ui_post(session, "/tunnels/new", form)
    assert refused.status_code == 400
    assert 'data-error-for="proxy_protocol"' in refused.text
    saved = pw.ui_post(session, "/tunnels/new", {**form, "passthrough": "on"})
    assert saved.status_code == 200, saved.text[-2000:]
    assert 'id="id_passthrough" checked' in saved.text
    listing = session.get(pw.admin_url + "/tunnels", timeout=30).text
    assert "TLS passthrough + PROXY" in listing
    (tunnel,) = [t for t in pw.api("GET", TUNNELS)[1] if f"ui.{DOMAIN}" in t["domain_names"]]
    assert tunnel["passthrough"] and tunnel["proxy_protocol"], tunnel
    assert pw.api("DELETE", f"{TUNNELS}/{tunnel['id']}")[0] == 200
