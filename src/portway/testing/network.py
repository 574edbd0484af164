"""Loopback-only network helpers for tests: free ports, a real upstream, a real DNS server,
TCP and UDP echo servers (stream upstreams).

Everything here binds 127.0.0.1; tests never send traffic anywhere else.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: UpstreamServer

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _answer(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.write(f"upgraded:{self.server.name}\n".encode())
            self.wfile.flush()
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "upstream": self.server.name,
                "path": self.path,
                "host": self.headers.get("Host"),
                "x_forwarded_proto": self.headers.get("X-Forwarded-Proto"),
                "x_forwarded_for": self.headers.get("X-Forwarded-For"),
                "x_real_ip": self.headers.get("X-Real-IP"),
                "authorization": self.headers.get("Authorization"),
                "remote_user": self.headers.get("Remote-User"),
                "remote_email": self.headers.get("Remote-Email"),
                # the client's (nginx's) port: equal across requests = one reused connection
                "peer_port": self.client_address[1],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer


class UpstreamServer(ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 answering JSON that names itself and the request.

    Answers `{"upstream": name, "path", "host", "x_forwarded_proto", ..., "peer_port"}`
    (peer_port: the port of the connection the request came on); a request with
    `Upgrade: websocket` gets `101 Switching Protocols` and a line `upgraded:<name>`.
    """

    daemon_threads = True

    def __init__(self, name: str, port: int = 0, address: str = "127.0.0.1") -> None:
        if ":" in address:
            self.address_family = socket.AF_INET6
        super().__init__((address, port), _UpstreamHandler)
        self.name = name
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def __enter__(self) -> UpstreamServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _EchoServing:
    """Serving in a thread while used as a context manager; `port` is the bound one."""

    server_address: tuple[str, int]
    serve_forever: Callable[[], None]
    shutdown: Callable[[], None]
    server_close: Callable[[], None]

    @property
    def port(self) -> int:
        return self.server_address[1]

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _TCPEchoHandler(socketserver.BaseRequestHandler):
    server: TCPEchoServer

    def handle(self) -> None:
        self.request.sendall(self.server.prefix)
        while data := self.request.recv(65536):
            self.request.sendall(data)


class TCPEchoServer(_EchoServing, socketserver.ThreadingTCPServer):
    """A TCP server on 127.0.0.1 sending `prefix` on each connection (so a test can tell
    which server answered), then every byte it receives."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, prefix: bytes = b"", port: int = 0) -> None:
        self.prefix = prefix
        super().__init__(("127.0.0.1", port), _TCPEchoHandler)


class _UDPEchoHandler(socketserver.BaseRequestHandler):
    server: UDPEchoServer

    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(self.server.prefix + data, self.client_address)


class UDPEchoServer(_EchoServing, socketserver.ThreadingUDPServer):
    """A UDP server on 127.0.0.1 answering each datagram with `prefix` + the datagram."""

    daemon_threads = True

    def __init__(self, prefix: bytes = b"", port: int = 0) -> None:
        self.prefix = prefix
        super().__init__(("127.0.0.1", port), _UDPEchoHandler)


def tcp_exchange(port: int, data: bytes, size: int | None = None, timeout: float = 5.0) -> bytes:
    """Send `data` to 127.0.0.1:`port` over TCP and return what comes back: `size` bytes
    (default len(data)), or less when the other side closes first.

    The client does not half-close: nginx's stream proxy ends the whole connection when
    the client does (proxy_half_close off).
    """
    wanted = len(data) if size is None else size
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks: list[bytes] = []
        received = 0
        while received < wanted:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)


def udp_exchange(port: int, data: bytes, timeout: float = 2.0) -> bytes:
    """Send one datagram to 127.0.0.1:`port` and return the first datagram answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, ("127.0.0.1", port))
        return sock.recvfrom(65536)[0]


class DNSServer(socketserver.ThreadingUDPServer):
    """An authoritative-for-everything DNS server on 127.0.0.1 with editable A records.

    `records["bar"] = "127.0.0.1"` makes `bar` resolve; other names get NXDOMAIN.
    Used as PORTWAY_RESOLVER so nginx's and Portway's lookups stay on loopback.
    """

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        self.records: dict[str, str] = {}
        super().__init__(("127.0.0.1", port), _DNSHandler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> DNSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _DNSHandler(socketserver.BaseRequestHandler):
    server: DNSServer

    def handle(self) -> None:
        data, sock = self.request
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        response = dns.message.make_response(query)
        response.flags |= 0x0400  # AA
        question = query.question[0] if query.question else None
        if question is not None:
            name = question.name.to_text(omit_final_dot=True).lower()
            address = self.server.records.get(name)
            if address is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(question.name, 1, "IN", "A", address))
        sock.sendto(response.to_wire(), self.client_address)
