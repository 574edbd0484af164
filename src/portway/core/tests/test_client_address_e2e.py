"""Behind the admin UI's usual proxy (a proxy host on this machine forwarding to the admin
port) each client keeps its own address: one guesser's failures throttle that guesser,
not everybody, and the audit log says where each attempt came from.

Clients are told apart by their loopback source address (127.0.0.2, 127.0.0.3): nginx
sees them as `$remote_addr` and appends it to `X-Forwarded-For`; the admin server sees
only nginx (127.0.0.1, a trusted proxy by default).
"""

from __future__ import annotations

import http.client
import json
import socket

from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, PortwayProcess, wait_for

ADMIN_NAME = "admin.example.test"


def _sign_in(
    portway: PortwayProcess, source: str, password: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """POST /api/tokens through nginx from the loopback address `source`."""
    raw = socket.create_connection(
        ("127.0.0.1", portway.http_port), timeout=10, source_address=(source, 0)
    )
    conn = http.client.HTTPConnection(ADMIN_NAME, portway.http_port, timeout=30)
    conn.sock = raw
    body = json.dumps({"identity": ADMIN_EMAIL, "secret": password})
    conn.request(
        "POST",
        "/api/tokens",
        body,
        {"Host": ADMIN_NAME, "Content-Type": "application/json", **(headers or {})},
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_a_guesser_behind_the_admin_proxy_is_throttled_alone(portway: PortwayProcess) -> None:
    portway.create_proxy_host([ADMIN_NAME], portway.admin_port)
    portway.wait_applied()
    wait_for(lambda: _sign_in(portway, "127.0.0.3", ADMIN_PASSWORD).status == 200)

    statuses = [
        _sign_in(portway, "127.0.0.2", "wrong-password", {"X-Forwarded-For": "127.0.0.9"}).status
        for _ in range(8)
    ]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    assert _sign_in(portway, "127.0.0.3", ADMIN_PASSWORD).status == 200

    status, entries = portway.api("GET", "/api/audit-log?limit=100")
    assert status == 200, entries
    failed = {e["meta"]["source_address"] for e in entries if e["action"] == "login-failed"}
    assert failed == {"127.0.0.2"}, failed
