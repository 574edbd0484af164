"""pydantic validation errors as messages a person can act on.

pydantic's own texts ("Input should be a valid integer, unable to parse string as an
integer", "List should have at least 1 item after validation, not 0") describe the parser,
not the request. Every schema error of the API and of the UI's services goes through
`field_errors`, which turns each into `field path → reason`: the reason says what the
field must be, in words, and what was sent instead ("must be a whole number, not "abc"").
Reasons raised by Portway's own validators (`portway.core.fields`) are kept as written.

Error types are pydantic-core's (https://docs.pydantic.dev/latest/errors/validation_errors/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# What an item of a list field is called, for "must contain at least one domain name".
ITEM_NOUNS = {
    "domain_names": ("domain name", "domain names"),
    "domains": ("domain name", "domain names"),
    "locations": ("custom location", "custom locations"),
    "roles": ("role", "roles"),
}

# Phrases of pydantic's own messages; none of them may reach a client or a form.
RAW_PHRASES = (
    "Input should",
    "should be",
    "should have",
    "after validation",
    "value is not a valid",
    "Value error,",
    "Assertion failed,",
    "Field required",
    "Extra inputs are not permitted",
    "unable to parse",
    "[type=",
    "errors.pydantic.dev",
)

_PREFIXES = ("Value error, ", "Assertion failed, ")


def given(value: Any) -> str:
    """A short, safe rendering of a client's value for "…, not <value>".

    Strings are JSON-quoted (so a newline shows as \\n, never as a line break) and cut at
    40 characters; lists and objects are named, not dumped.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        if value == "":
            return "an empty string"
        text = value if len(value) <= 40 else value[:37] + "..."
        return json.dumps(text)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a value of another type"


def _noun(path: Sequence[str | int], count: int) -> str:
    for part in reversed(path):
        if isinstance(part, str) and part in ITEM_NOUNS:
            one, many = ITEM_NOUNS[part]
            return one if count == 1 else many
    return "item" if count == 1 else "items"


def _count(number: Any) -> str:
    return "one" if number == 1 else str(number)


_UNKNOWN = object()


def _not(base: str, value: Any) -> str:
    return base if value is _UNKNOWN else f"{base}, not {given(value)}"


def reason(error: Mapping[str, Any]) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) as a reason.

    The reason is a predicate for the field's name: "must be a whole number, not "80.5"".
    """
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    value = error.get("input", _UNKNOWN)
    path = [p for p in error.get("loc", ()) if isinstance(p, str | int)]
    message = str(error.get("msg", ""))

    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a property Portway accepts here: remove it (check its spelling)"
    if kind in ("value_error", "assertion_error"):
        for prefix in _PREFIXES:
            if message.startswith(prefix):
                return message[len(prefix) :]
        return message
    if kind == "string_type":
        return _not("must be text (a JSON string)", value)
    if kind in ("int_type", "int_parsing", "int_from_float", "int_parsing_size"):
        return _not("must be a whole number", value)
    if kind in ("float_type", "float_parsing", "decimal_type", "decimal_parsing"):
        return _not("must be a number", value)
    if kind in ("bool_type", "bool_parsing"):
        return _not("must be true or false", value)
    if kind in ("list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type"):
        return _not(f"must be a list of {_noun(path, 2)}", value)
    if kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type"):
        return _not("must be a JSON object", value)
    if kind in ("literal_error", "enum"):
        return _not(f"must be {ctx.get('expected', 'one of the listed values')}", value)
    if kind == "greater_than_equal":
        return _not(f"must be {ctx.get('ge')} or more", value)
    if kind == "greater_than":
        return _not(f"must be more than {ctx.get('gt')}", value)
    if kind == "less_than_equal":
        return _not(f"must be {ctx.get('le')} or less", value)
    if kind == "less_than":
        return _not(f"must be less than {ctx.get('lt')}", value)
    if kind == "multiple_of":
        return _not(f"must be a multiple of {ctx.get('multiple_of')}", value)
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        if least == 1:
            return "must not be empty"
        return f"must be at least {least} characters long"
    if kind == "string_too_long":
        length = f" (it has {len(value)})" if isinstance(value, str) else ""  # type: ignore[arg-type]
        return f"must be at most {ctx.get('max_length')} characters long{length}"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"must contain at least {_count(least)} {_noun(path, least)}"
    if kind == "too_long":
        most = ctx.get("max_length")
        actual = ctx.get("actual_length")
        tail = f" (it has {actual})" if actual is not None else ""
        return f"must contain at most {most} {_noun(path, most or 2)}{tail}"
    if kind == "string_pattern_mismatch":
        return _not(f"must match the pattern {ctx.get('pattern')}", value)
    if kind in ("json_invalid", "json_type"):
        return "is not valid JSON"
    if kind in ("datetime_type", "datetime_parsing", "datetime_from_date_parsing"):
        return _not("must be a date and time (ISO 8601, e.g. 2026-01-31T12:00:00Z)", value)
    if kind in ("date_type", "date_parsing", "date_from_datetime_parsing"):
        return _not("must be a date (ISO 8601, e.g. 2026-01-31)", value)
    if kind == "none_required":
        return _not("must be null", value)
    return _plain(message)


def _plain(message: str) -> str:
    """Last resort for an error type not named above: pydantic's words made imperative."""
    for prefix in _PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix) :]
    text = re.sub(r"^Input should\b", "must", message)
    text = text.replace(" should ", " must ").replace(" after validation", "")
    return text[:1].lower() + text[1:] if text else "is not valid"


def field_errors(
    errors: Iterable[Mapping[str, Any]], *, skip: Sequence[str] = ()
) -> dict[str, str]:
    """`field path → reason` for pydantic errors, first reason per field.

    Args:
        errors: `ValidationError.errors()` (or ninja's `ValidationError.errors`).
        skip: leading location parts that are not fields (ninja's "body", "payload").

    The path joins the location with "/" (`locations/0/forward_port`), as NPM's error
    messages do; "" is the body itself.
    """
    found: dict[str, str] = {}
    for error in errors:
        loc = list(error.get("loc", ()))
        while loc and loc[0] in skip:
            loc = loc[1:]
        found.setdefault("/".join(str(p) for p in loc), reason(error))
    return found


def has_raw_phrase(text: str) -> str | None:
    """The first pydantic phrase found in `text`, or None (for tests and assertions)."""
    for phrase in RAW_PHRASES:
        if phrase.lower() in text.lower():
            return phrase
    return None
