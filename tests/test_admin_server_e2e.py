"""The admin server against hostile clients: huge bodies and slow connections.

Real `portway serve`, real sockets on 127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from portway.admin_server import HEADER_TIMEOUT_SECONDS, MAX_REQUEST_BODY_BYTES
from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, PortwayProcess, wait_for

pytestmark = pytest.mark.slow  # the database plays no part: SQLite only

HUNDRED_MB = 100 * 1024 * 1024


def _memory_kib(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (peak resident) of process `pid`, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def _send_huge_body(portway: PortwayProcess, path: str, chunked: bool) -> tuple[int, str, bytes]:
    """POST a 100 MB body while reading the answer; (status, content type, body)."""
    sock = socket.create_connection(("127.0.0.1", portway.admin_port), timeout=30)
    framing = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {HUNDRED_MB}\r\n"
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {portway.token}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n"
        ).encode()
    )
    block = b"x" * (1024 * 1024)

    def send_body() -> None:
        try:
            for _ in range(HUNDRED_MB // len(block)):
                if chunked:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
                else:
                    sock.sendall(block)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed: the rest is never read

    sender = threading.Thread(target=send_body)
    sender.start()
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    sender.join(timeout=60)
    sock.close()
    return response.status, response.getheader("Content-Type", ""), body


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_100_mb_body_gets_413_with_the_limit_and_memory_stays_bounded(portway, chunked):
    pid = portway.proc.pid
    assert portway.api("GET", "/api/nginx/proxy-hosts")[0] == 200  # logged in, warmed up
    resident_before = _memory_kib(pid, "VmRSS")

    status, content_type, body = _send_huge_body(portway, "/api/nginx/proxy-hosts", chunked)

    assert status == 413
    assert content_type.startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == 413
    assert f"{MAX_REQUEST_BODY_BYTES // 1048576} MiB" in error["message"]
    # never a 100 MB buffer: the peak stays far below the body's size
    assert _memory_kib(pid, "VmHWM") - resident_before < 40 * 1024
    # and the server carries on
    assert portway.api("GET", "/api/nginx/proxy-hosts")[0] == 200


def test_a_body_over_the_limit_to_a_ui_page_gets_413_naming_the_limit(portway):
    status, content_type, body = _send_huge_body(portway, "/nginx/proxy", chunked=False)
    assert status == 413
    assert content_type.startswith("text/plain")
    assert f"{MAX_REQUEST_BODY_BYTES // 1048576} MiB" in body.decode()


def test_a_body_at_the_limit_reaches_the_application(portway):
    """Exactly the limit is allowed: the API answers for itself (400: not a host)."""
    payload = json.dumps({"domain_names": ["x.example.test"], "pad": "x"}).encode()
    payload = payload[:-2] + b" " * (MAX_REQUEST_BODY_BYTES - len(payload)) + payload[-2:]
    assert len(payload) == MAX_REQUEST_BODY_BYTES
    conn = http.client.HTTPConnection("127.0.0.1", portway.admin_port, timeout=60)
    conn.request(
        "POST",
        "/api/nginx/proxy-hosts",
        payload,
        {"Authorization": f"Bearer {portway.token}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 400
    assert body["error"]["code"] == 400


def _slow_connections(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"G")  # the start of a request header, never finished
        sockets.append(sock)
    return sockets


def test_200_slow_connections_do_not_keep_an_admin_from_logging_in(portway):
    header = b"ET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    slow = _slow_connections(portway.admin_port, 200)
    stop = threading.Event()

    def drip() -> None:
        # one more header byte on every connection about each second, for at most 60 s
        for offset in range(60):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(header[offset % len(header) : offset % len(header) + 1])
            if stop.wait(1.0):
                return

    dripper = threading.Thread(target=drip)
    dripper.start()
    try:
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", portway.admin_port, timeout=10)
        conn.request(
            "POST",
            "/api/tokens",
            json.dumps({"identity": ADMIN_EMAIL, "secret": ADMIN_PASSWORD}),
            {"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        token = json.loads(response.read())["token"]
        assert response.status == 200
        conn.request("GET", "/login")
        page = conn.getresponse()
        html = page.read().decode()
        conn.close()
        assert page.status == 200
        assert "<form" in html
        assert time.monotonic() - started < 10  # a login hashes a password: CI can be slow
        status, _ = portway.api("GET", "/api/nginx/proxy-hosts", token=token)
        assert status == 200
    finally:
        stop.set()
        dripper.join(timeout=10)
        for sock in slow:
            sock.close()


# b"\r\n": blank lines, which waitress skips before a request, are trickled too
@pytest.mark.parametrize("drip", [b"X", b"\r\n"], ids=["header-byte", "blank-line"])
def test_a_header_trickled_for_longer_than_the_header_timeout_is_cut_off(portway, drip):
    sock = socket.create_connection(("127.0.0.1", portway.admin_port), timeout=5)
    started = time.monotonic()
    closed = False
    try:
        # one byte a second, never a full header; bounded to twice the timeout
        for _ in range(2 * HEADER_TIMEOUT_SECONDS + 10):
            try:
                sock.sendall(drip)
                sock.settimeout(1.0)
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
    finally:
        sock.close()
    assert closed
    assert HEADER_TIMEOUT_SECONDS <= time.monotonic() - started < HEADER_TIMEOUT_SECONDS + 15
    # a normal client is not affected
    wait_for(lambda: portway.api("GET", "/api/", auth=False)[0] == 200)


def test_a_keep_alive_connection_outlives_the_header_timeout(portway):
    """The header deadline runs from each request's first byte, not the connection's:
    a browser or API client reusing a connection later than HEADER_TIMEOUT_SECONDS after
    its first request gets an answer (found by the private-key sweep's long session)."""
    conn = http.client.HTTPConnection("127.0.0.1", portway.admin_port, timeout=30)
    try:
        conn.request("GET", "/api/")
        first = conn.getresponse()
        first.read()
        assert first.status == 200 and not first.will_close
        sock = conn.sock
        # past the header deadline the first request would have had (idle for less than
        # IDLE_TIMEOUT_SECONDS, so the connection may stay open); more waiting only
        # makes the check stricter
        time.sleep(HEADER_TIMEOUT_SECONDS + 2)
        conn.request("GET", "/api/")
        second = conn.getresponse()
        assert conn.sock is sock  # the same connection answered
        assert second.status == 200
        second.read()
    finally:
        conn.close()
