"""Brute force against a real `portway serve`: a guessing address is slowed, the owner is not.

The client binds its socket to a source address on the loopback network (127.0.0.2 for
the guesser, 127.0.0.1 for the real admin), so Portway sees two different peers exactly
as it would on a network: nothing here is faked.
"""

from __future__ import annotations

import http.client
import json
import math
import time
from typing import Any

import pytest

from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

GUESSER = "127.0.0.2"
OWNER = "127.0.0.1"


def login_from(source: str, port: int, password: str) -> tuple[int, dict[str, str], Any]:
    """POST /api/tokens from `source`; returns (status, headers, JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    body = json.dumps({"identity": ADMIN_EMAIL, "secret": password}).encode()
    conn.request("POST", "/api/tokens", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return response.status, dict(response.getheaders()), data


def test_fifty_wrong_passwords_are_slowed_but_the_owner_gets_in(portway):
    port = portway.admin_port
    started = time.monotonic()
    answers = [login_from(GUESSER, port, f"guess number {i}") for i in range(50)]
    elapsed = time.monotonic() - started
    statuses = [status for status, _, _ in answers]
    checked = statuses.count(401)
    # Measured: after 5 free failures each one doubles the wait (1, 2, 4 ... s), so in
    # `elapsed` seconds at most 6 + log2(1 + elapsed) passwords were even checked; the
    # rest were turned away with 429 and Retry-After without looking at the password.
    assert checked <= 6 + math.log2(1 + elapsed) + 1, (checked, elapsed, statuses)
    assert checked < 20 and statuses.count(429) == 50 - checked
    refused = [(headers, body) for status, headers, body in answers if status == 429]
    assert all(int(headers["Retry-After"]) >= 1 for headers, _ in refused)
    assert "try again in" in refused[-1][1]["error"]["message"]

    # The real admin, from another address, signs in at once.
    status, _, body = login_from(OWNER, port, ADMIN_PASSWORD)
    assert status == 200 and body["token"]

    # Not locked out for good: once the delay passes the guesser is heard again, and
    # the next failure doubles the delay (exponential, capped at 15 minutes).
    last_wait = int(refused[-1][0]["Retry-After"])
    answer = wait_for(
        lambda: (a := login_from(GUESSER, port, "one more guess"))[0] == 401 and a,
        timeout=last_wait + 15,
        interval=0.2,
    )
    assert answer[0] == 401
    status, headers, _ = login_from(GUESSER, port, "and another")
    assert status == 429 and int(headers["Retry-After"]) >= 2 * last_wait - 2

    # Every failed attempt is in the audit log with its source address.
    status, entries = portway.api("GET", "/api/audit-log?action=login-failed&limit=1000")
    assert status == 200
    sources = [e["meta"]["source_address"] for e in entries]
    assert sources == [GUESSER] * (checked + 1)
    assert {e["meta"]["identity"] for e in entries} == {ADMIN_EMAIL}
