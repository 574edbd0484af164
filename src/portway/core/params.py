"""Numbers in API paths and query strings: ASCII digits, in a range the database holds.

pydantic's lax int would take `" 1"`, `"1_0"` and any length of digits; Python's `int()`
also takes other scripts' digits (`"١"`) and `str.isdigit()` is true for `"¹"`, which
`int()` then refuses. A number that reaches the ORM must be one the database can store:
SQLite raises "datatype mismatch" for an OFFSET beyond 64 bits. These types answer 400
naming the parameter instead.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

MAX_ID = 2**63 - 1
"""Largest primary key: Django's BigAutoField is a signed 64-bit integer on every backend."""
MAX_OFFSET = 2**31 - 1
"""Largest paging offset: far beyond any real log, small enough for every backend."""
MAX_LIMIT = 1000
"""Most rows one page of a paged list returns."""

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_MAX_DIGITS = 30  # beyond every range here; int() of longer text only costs time


def ascii_integer(value: Any) -> Any:
    """`value` as an int when it is an int or a string of ASCII digits.

    Anything else (booleans, signs, spaces, underscores, other scripts' digits, floats)
    raises ValueError with a message for the client; ranges are checked afterwards by the
    `Field` constraints of the annotated type.
    """
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        if len(value.lstrip("0")) > _MAX_DIGITS:
            raise ValueError(f"must be a number of at most {_MAX_DIGITS} digits")
        return int(value)
    raise ValueError("must be a whole number written with the digits 0-9")


def is_id(text: str) -> bool:
    """True when `text` is ASCII digits naming an id the database could hold."""
    return bool(_DIGITS.fullmatch(text)) and len(text) <= _MAX_DIGITS and int(text) <= MAX_ID


ObjectId = Annotated[int, Field(ge=0, le=MAX_ID, strict=True), BeforeValidator(ascii_integer)]
"""A path id such as /proxy-hosts/{host_id}: 0 to 2^63-1 (0 and unknown ids are a 404)."""

Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, strict=True), BeforeValidator(ascii_integer)]
"""`?offset=`: rows to skip, 0 to 2^31-1."""

Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, strict=True), BeforeValidator(ascii_integer)]
"""`?limit=`: rows per page, 1 to 1000."""
