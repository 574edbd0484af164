"""Wire formats shared by every API module.

NPM clients parse timestamps strictly: ISO 8601 in UTC with exactly three fractional
digits and a trailing `Z` (`2026-11-30T10:00:00.000Z`), as JavaScript's
`Date.prototype.toISOString()` writes them. Python's `isoformat()` gives `+00:00` and
six digits, which those clients reject, so every response goes through `iso()`.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(dt: datetime) -> str:
    """`dt` as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.

    Args:
        dt: an aware datetime in any zone (converted to UTC), or a naive one, which is
            taken to be UTC already (Django stores UTC with USE_TZ).

    Raises:
        TypeError: `dt` is not a datetime (e.g. None: callers decide what null means).
    """
    if not isinstance(dt, datetime):
        raise TypeError(f"iso() needs a datetime, not {type(dt).__name__}")
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    # Truncate rather than round: rounding 999.5ms up would change the second. Fields are
    # formatted by hand because strftime("%Y") does not zero-pad years before 1000.
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )
