"""portway.core.wire.iso: the timestamp format NPM clients parse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from portway.core.wire import iso


def test_utc_with_milliseconds_and_z():
    assert iso(datetime(2026, 11, 30, 10, 0, tzinfo=UTC)) == "2026-11-30T10:00:00.000Z"
    assert iso(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)) == "2026-01-02T03:04:05.678Z"


def test_truncates_rather_than_rounds():
    value = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert iso(value) == "2026-12-31T23:59:59.999Z"


def test_converts_other_zones_to_utc():
    plus_two = timezone(timedelta(hours=2))
    assert iso(datetime(2026, 1, 1, 1, 30, tzinfo=plus_two)) == "2025-12-31T23:30:00.000Z"


def test_naive_is_taken_as_utc():
    assert iso(datetime(2026, 5, 6, 7, 8, 9)) == "2026-05-06T07:08:09.000Z"


def test_pads_small_years():
    assert iso(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000Z"


def test_rejects_non_datetimes():
    with pytest.raises(TypeError):
        iso(None)  # type: ignore[arg-type]
