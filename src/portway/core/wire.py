"""Wire formats shared by every API module.

NPM clients parse timestamps strictly: ISO 8601 in UTC with exactly three fractional
digits and a trailing `Z` (`2026-11-30T10:00:00.000Z`), as JavaScript's
`Date.prototype.toISOString()` writes them. Python's `isoformat()` gives `+00:00` and
six digits, which those clients reject, so every response goes through `iso()`.
"""

from __future__ import annotations

import json
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


MAX_META_BYTES = 64 * 1024
"""Largest client `meta` (hosts, certificates), as compact JSON in UTF-8."""
MAX_META_DEPTH = 16
"""Deepest nesting of objects and arrays in a client `meta`: MariaDB's JSON checks stop
at 32 levels, and no client needs more than a few."""


def meta_problem(meta: object) -> str | None:
    """Why `meta` cannot be stored as a client's `meta`, or None when it can.

    `meta` must be a JSON object of at most MAX_META_BYTES bytes and MAX_META_DEPTH
    levels. The text is a reason to follow the field name (`data/meta <reason>`).
    """
    if not isinstance(meta, dict):
        return "must be an object"
    stack: list[tuple[object, int]] = [(meta, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_META_DEPTH:
                return f"must not nest objects and arrays more than {MAX_META_DEPTH} deep"
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    try:
        text = json.dumps(meta, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return "must be plain JSON"
    if len(text.encode("utf-8")) > MAX_META_BYTES:
        return f"must be at most {MAX_META_BYTES // 1024} KiB of JSON"
    return None
