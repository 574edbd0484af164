"""First run against a real `portway serve`: simultaneous setup requests create one admin."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path

import pytest

from portway.testing.process import PortwayProcess

pytestmark = pytest.mark.e2e_db

RACERS = 20
PASSWORD = "first-run-password"


def _post_first_user(port: int, index: int, barrier: threading.Barrier) -> tuple[int, dict]:
    """One unauthenticated POST /api/users, sent when every racer is connected and ready."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()
    body = json.dumps(
        {
            "name": f"Racer {index}",
            "email": f"racer{index}@example.com",
            "auth": {"type": "password", "secret": PASSWORD},
        }
    )
    barrier.wait(timeout=30)
    conn.request(
        "POST",
        "/api/users",
        body,
        {"Content-Type": "application/json", "Accept": "application/json"},
    )
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, json.loads(raw)


def test_simultaneous_first_run_requests_create_exactly_one_admin(tmp_path: Path) -> None:
    with PortwayProcess(tmp_path / "data", admin=False) as portway:
        assert portway.api("GET", "/api/", auth=False)[1]["setup"] is False
        barrier = threading.Barrier(RACERS)
        results: list[tuple[int, dict] | BaseException] = [None] * RACERS  # type: ignore[list-item]

        def race(index: int) -> None:
            try:
                results[index] = _post_first_user(portway.admin_port, index, barrier)
            except BaseException as exc:  # reported below, with the others' answers
                results[index] = exc

        threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert all(isinstance(result, tuple) for result in results), results

        answers: list[tuple[int, dict]] = results  # type: ignore[assignment]
        assert sorted(status for status, _ in answers) == [201] + [401] * (RACERS - 1), answers
        (winner,) = [body for status, body in answers if status == 201]
        assert winner["roles"] == ["admin"]

        status, login = portway.api(
            "POST", "/api/tokens", {"identity": winner["email"], "secret": PASSWORD}, auth=False
        )
        assert status == 200, login
        status, users = portway.api("GET", "/api/users", token=login["token"])
        assert status == 200, users
        assert [user["email"] for user in users] == [winner["email"]]
        loser = next(
            e for e in ("racer0@example.com", "racer1@example.com") if e != winner["email"]
        )
        status, _ = portway.api(
            "POST", "/api/tokens", {"identity": loser, "secret": PASSWORD}, auth=False
        )
        assert status == 401
        assert portway.api("GET", "/api/", auth=False)[1]["setup"] is True
