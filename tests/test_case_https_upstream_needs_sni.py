"""Shared case https-upstream-needs-sni: HTTPS upstreams get SNI, the forward host's name.

The upstream here is a real TLS server on 127.0.0.1 that refuses a handshake without SNI
(as virtual hosting behind another reverse proxy, a NAS or a cloud service does). A name
resolved per request (it did not resolve when the config was applied) gets SNI too; an
IP address gets none (RFC 6066 section 3).
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from portway.testing.certs import make_leaf
from portway.testing.process import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SNIUpstream

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "upstream": self.server.name,
                "path": self.path,
                "sni": getattr(self.connection, "portway_sni", None),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class SNIUpstream(ThreadingHTTPServer):
    """An HTTPS upstream on 127.0.0.1 that answers with the SNI it saw.

    require_sni: refuse handshakes without SNI (alert unrecognized_name).
    """

    daemon_threads = True

    def __init__(self, name: str, directory: Path, require_sni: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.refused = 0
        chain, key = make_leaf(None, ["localhost"]).write(directory / name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key)
        if require_sni:  # a modern service: TLS 1.3 only
            context.minimum_version = ssl.TLSVersion.TLSv1_3

        def check_sni(sock, server_name, _context):  # noqa: ANN001
            if server_name is None and require_sni:
                self.refused += 1
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            sock.portway_sni = server_name
            return None

        context.sni_callback = check_sni
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def __enter__(self) -> SNIUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def _answer(portway, host: str, path: str = "/z") -> dict | None:  # noqa: ANN001
    status, headers, body = portway.http(host, path)
    if status != 200 or headers.get("content-type") != "application/json":
        return None  # not live yet (the default site answers) or the upstream failed
    return json.loads(body)


def test_https_upstream_needs_sni(portway, dns_server, tmp_path):
    with (
        SNIUpstream("named", tmp_path) as named,
        SNIUpstream("by-ip", tmp_path, require_sni=False) as by_ip,
    ):
        # the case itself: forward host "localhost"
        portway.create_proxy_host(
            ["tlsup.example.test"],
            named.port,
            forward_scheme="https",
            forward_host="localhost",
            locations=[
                {
                    "path": "/loc",
                    "forward_scheme": "https",
                    "forward_host": "localhost",
                    "forward_port": named.port,
                    "forward_path": "/inner",
                }
            ],
        )
        # a name that resolves only later: nginx resolves it per request
        portway.create_proxy_host(
            ["late.example.test"], named.port, forward_scheme="https", forward_host="tls.late.test"
        )
        # an admin who set it (and caching options) already: theirs wins, nginx takes it
        own = portway.create_proxy_host(
            ["own.example.test"],
            named.port,
            forward_scheme="https",
            forward_host="localhost",
            caching_enabled=True,
            advanced_config="proxy_ssl_server_name on;\nexpires 1h;\nproxy_cache_key $uri;",
        )
        assert own["meta"]["nginx_online"] is True, own["meta"]
        # an IP address: no SNI at all
        portway.create_proxy_host(
            ["byip.example.test"], by_ip.port, forward_scheme="https", forward_host="127.0.0.1"
        )
        wait_for(lambda: _answer(portway, "tlsup.example.test"))
        portway.wait_applied()

        assert _answer(portway, "tlsup.example.test") == {
            "upstream": "named",
            "path": "/z",
            "sni": "localhost",
        }
        assert _answer(portway, "tlsup.example.test", "/loc/a?x=1") == {
            "upstream": "named",
            "path": "/inner/a?x=1",
            "sni": "localhost",
        }
        assert _answer(portway, "byip.example.test") == {
            "upstream": "by-ip",
            "path": "/z",
            "sni": None,
        }
        assert _answer(portway, "own.example.test")["sni"] == "localhost"
        assert portway.http("late.example.test", "/z")[0] == 502
        dns_server.records["tls.late.test"] = "127.0.0.1"
        late = wait_for(lambda: _answer(portway, "late.example.test"), timeout=30)
        assert late["sni"] == "tls.late.test"
        assert named.refused == 0
