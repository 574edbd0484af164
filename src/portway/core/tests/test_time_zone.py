"""TZ (NPM's variable): the zone of the times the UI shows."""

from __future__ import annotations

import pytest

from portway import conf


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "UTC"),
        ("", "UTC"),
        ("Europe/Berlin", "Europe/Berlin"),
        (":America/New_York", "America/New_York"),  # POSIX's ":file" form
        ("CET-1CEST", "UTC"),  # a POSIX rule meant for other programs: UI stays UTC
        ("../../etc/passwd", "UTC"),
    ],
)
def test_time_zone_from_tz(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str):
    if value is None:
        monkeypatch.delenv("TZ", raising=False)
    else:
        monkeypatch.setenv("TZ", value)
    assert conf.load().time_zone == expected
