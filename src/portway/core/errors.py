"""Domain errors raised by services and turned into HTTP answers by the API and the UI.

Services never return HTTP responses; they raise these, and both the API (NPM's
`{"error": {"code", "message"}}` body) and the HTML forms (inline messages) render them.
"""

from __future__ import annotations


class PortwayError(Exception):
    """Base class: `status` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FieldError(PortwayError):
    """A request field is invalid. `field` is a slash path such as `domain_names/0`."""

    status = 400

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"data/{field} {reason}")
        self.field = field
        self.reason = reason


class BadRequest(PortwayError):
    """The request is well-formed but not acceptable now (e.g. host already enabled)."""

    status = 400


class NotAuthenticated(PortwayError):
    status = 401


class PermissionDenied(PortwayError):
    status = 403


class NotFound(PortwayError):
    status = 404


class Conflict(PortwayError):
    """The object is in use (e.g. a certificate that hosts still reference)."""

    status = 409


class InvalidFields(FieldError):
    """Several fields are invalid at once. `errors` maps field path → reason.

    The API answers with all of them joined; HTML forms show each beside its input.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        first_field, first_reason = next(iter(errors.items()))
        super().__init__(first_field, first_reason)
        self.errors = errors
        self.message = "; ".join(f"data/{field} {reason}" for field, reason in errors.items())
        self.args = (self.message,)


class TooManyRequests(PortwayError):
    """Too many failed attempts; `retry_after` is the whole seconds to wait (Retry-After)."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
