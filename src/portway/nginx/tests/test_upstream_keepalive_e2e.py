"""Upstream keep-alive pools, observed through a real nginx and real upstreams.

Each upstream reports the port of the connection a request arrived on: the same port for
many requests means nginx reused one connection instead of opening one per request.
nginx runs a worker per CPU, each with its own pool, so a handful of distinct ports is
expected; without pools every request had its own.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from portway.testing.certs import make_leaf
from portway.testing.network import UpstreamServer
from portway.testing.process import wait_for

pytestmark = pytest.mark.slow

REQUESTS = 24


@pytest.fixture(scope="module")
def pw(shared_portway):
    return shared_portway


class TLSUpstream(UpstreamServer):
    """UpstreamServer over TLS 1.3 that refuses a handshake without SNI (counts them)."""

    def __init__(self, name: str, directory: Path) -> None:
        super().__init__(name)
        self.refused = 0
        self.handshakes = 0
        chain, key = make_leaf(None, ["localhost"]).write(directory / name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key)
        context.minimum_version = ssl.TLSVersion.TLSv1_3

        def check_sni(_sock, server_name, _context):  # noqa: ANN001
            if server_name != "localhost":
                self.refused += 1
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            self.handshakes += 1
            return None

        context.sni_callback = check_sni
        self.socket = context.wrap_socket(self.socket, server_side=True)


def _answer(pw, host: str, path: str = "/") -> dict | None:  # noqa: ANN001
    status, headers, body = pw.http(host, path)
    if status != 200 or headers.get("content-type") != "application/json":
        return None
    return json.loads(body)


def _connections(pw, host: str, expected: str) -> Counter:  # noqa: ANN001
    """Requests per upstream connection for REQUESTS requests, each on a new client
    connection (so the reuse seen is nginx's, not the client's)."""
    ports: Counter = Counter()
    for index in range(REQUESTS):
        answer = _answer(pw, host, f"/r{index}")
        assert answer is not None and answer["upstream"] == expected
        assert answer["host"] == host  # the client's Host, not the upstream block's name
        ports[answer["peer_port"]] += 1
    return ports


def _live(pw, host: str, expected: str) -> None:  # noqa: ANN001
    wait_for(lambda: (_answer(pw, host) or {}).get("upstream") == expected)
    pw.wait_applied()


def _reused(ports: Counter) -> bool:
    return len(ports) <= 4 and ports.most_common(1)[0][1] >= REQUESTS // 4


def test_http_upstream_connections_are_reused(pw):
    with UpstreamServer("pooled") as upstream:
        pw.create_proxy_host(["pool.example.com"], upstream.port)
        _live(pw, "pool.example.com", "pooled")
        ports = _connections(pw, "pool.example.com", "pooled")
        assert _reused(ports), ports


def test_websocket_upgrade_through_a_pooled_host(pw):
    with UpstreamServer("ws") as upstream:
        pw.create_proxy_host(["ws.example.com"], upstream.port, allow_websocket_upgrade=True)
        _live(pw, "ws.example.com", "ws")
        with socket.create_connection(("127.0.0.1", pw.http_port), timeout=10) as client:
            client.sendall(
                b"GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            received = b""
            while b"upgraded:ws\n" not in received:
                chunk = client.recv(4096)
                assert chunk, received
                received += chunk
        assert received.startswith(b"HTTP/1.1 101 ")
        # plain requests of the same host still share connections (no Connection: close)
        assert _reused(_connections(pw, "ws.example.com", "ws"))


def test_https_upstream_keeps_sni_and_reuses_connections(pw, tmp_path):
    with TLSUpstream("tls", tmp_path) as upstream:
        pw.create_proxy_host(
            ["tlspool.example.com"], upstream.port, forward_scheme="https", forward_host="localhost"
        )
        _live(pw, "tlspool.example.com", "tls")
        ports = _connections(pw, "tlspool.example.com", "tls")
        assert _reused(ports), ports
        assert upstream.refused == 0
        assert upstream.handshakes <= len(ports) + 4  # not one per request


def test_custom_location_and_unresolved_name_still_answer(pw, shared_dns_server):
    with UpstreamServer("main") as main, UpstreamServer("api") as api:
        pw.create_proxy_host(
            ["mixed.example.com"],
            main.port,
            locations=[
                {
                    "path": "/api",
                    "forward_scheme": "http",
                    "forward_host": "127.0.0.1",
                    "forward_port": api.port,
                    "forward_path": "/v2",
                },
                {
                    "path": "/later",
                    "forward_scheme": "http",
                    "forward_host": "later.pool.test",
                    "forward_port": api.port,
                },
            ],
        )
        _live(pw, "mixed.example.com", "main")
        assert _reused(_connections(pw, "mixed.example.com", "main"))
        answer = _answer(pw, "mixed.example.com", "/api/x?y=1")
        assert answer is not None and (answer["upstream"], answer["path"]) == ("api", "/v2/x?y=1")
        # a name that did not resolve at apply time is resolved per request (no pool)
        assert pw.http("mixed.example.com", "/later/a")[0] == 502
        shared_dns_server.records["later.pool.test"] = "127.0.0.1"
        late = wait_for(lambda: _answer(pw, "mixed.example.com", "/later/a"), timeout=30)
        assert late["upstream"] == "api" and late["path"] == "/later/a"


class _RedirectingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        # an app that redirects to its own address (it does not know the proxy's name)
        self.send_response(302)
        self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/next")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_redirects_to_the_upstream_address_are_rewritten_as_before(pw):
    """nginx's default proxy_redirect, which named the address, still applies."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RedirectingHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pw.create_proxy_host(["redir.example.com"], server.server_address[1])
        wait_for(lambda: pw.http("redir.example.com")[0] == 302)
        pw.wait_applied()
        location = pw.http("redir.example.com")[1]["location"]
        assert location.endswith("/next") and f":{server.server_address[1]}" not in location
    finally:
        server.shutdown()
        server.server_close()


def test_administrators_proxy_redirect_and_ssl_name_win(pw, tmp_path):
    """Their own proxy_redirect/proxy_ssl_name (server or location) are kept and nginx
    takes the config (a second proxy_ssl_name at one level would fail `nginx -t`)."""
    with TLSUpstream("own", tmp_path) as upstream:
        host = pw.create_proxy_host(
            ["ownname.example.com"],
            upstream.port,
            forward_scheme="https",
            forward_host="127.0.0.1",
            advanced_config="proxy_redirect off;\nproxy_ssl_name localhost;",
            locations=[
                {
                    "path": "/loc",
                    "forward_scheme": "https",
                    "forward_host": "127.0.0.1",
                    "forward_port": upstream.port,
                    "advanced_config": "proxy_ssl_name localhost;\nproxy_redirect default;",
                }
            ],
        )
        assert host["meta"]["nginx_online"] is True, host["meta"]
        _live(pw, "ownname.example.com", "own")  # SNI "localhost" although the host is an IP
        assert (_answer(pw, "ownname.example.com", "/loc/x") or {}).get("upstream") == "own"
        assert upstream.refused == 0
