"""The NPM-compatible REST API instance, its error format and its authentication.

Every app adds a router in its own `api.py`; `portway.urls` mounts this instance at /api.
Errors always have NPM's shape: `{"error": {"code": <status>, "message": <text>}}`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer
from ninja.utils import check_csrf

from portway import __version__
from portway.core.errors import (
    NotAuthenticated,
    PermissionDenied,
    PortwayError,
    Unavailable,
    unavailable,
)

log = logging.getLogger("portway.api")


class BearerAuth(HttpBearer):
    """`Authorization: Bearer <token>`, re-checking the user on every request.

    A logged-in UI session is accepted too, so the browser can call the API it renders;
    then Django's CSRF check applies, as it does to the UI's forms (a cookie alone must
    not let a page on a neighbouring site change anything).
    """

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get("Authorization", "")
        if not header and getattr(request, "user", None) and request.user.is_authenticated:
            if check_csrf(request) is not None:
                raise PermissionDenied(
                    "CSRF check failed: send the X-CSRFToken header with a session, "
                    "or use a Bearer token"
                )
            return request.user
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        from portway.accounts.tokens import authenticate_scoped
        from portway.core.audit import client_address

        user, scope = authenticate_scoped(token, request.method or "GET", client_address(request))
        request.user = user
        # "read" / "full" for a named API token, "user" for a login token: endpoints that
        # mint credentials refuse read-only tokens (see accounts.api).
        request.token_scope = scope
        return user


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "NPM's error shape; `code` repeats the HTTP status",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
            "required": ["code", "message"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}
# Documented on every operation: any client error, and 503 (database or disk unavailable)
ERROR_RESPONSES = {
    "4XX": "The request was refused; `message` names the field and the reason",
    "503": "The database is locked, read-only or unreachable, or the disk is full",
}


class PortwayAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document lists paths relative to `servers[0].url` (…/api)
    and documents NPM's error body for every operation's 4XX and 503 answers."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> dict:
        schema = super().get_openapi_schema(*args, **kwargs)
        prefix = self.get_root_path(kwargs.get("path_params") or {}).rstrip("/")  # "/api"
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        paths = {}
        for path, item in schema.get("paths", {}).items():
            relative = path[len(prefix) :] if path.startswith(prefix) else path
            paths[relative or "/"] = item
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for status, description in ERROR_RESPONSES.items():
                    responses.setdefault(status, {"description": description, "content": error})
        schema["paths"] = paths
        schema["servers"] = [{"url": prefix}]
        return schema


api = PortwayAPI(
    title="Portway API",
    version=__version__,
    description="Nginx Proxy Manager compatible API served by Portway.",
    auth=BearerAuth(),
    urls_namespace="api",
    openapi_url="/schema",
    docs_url="/docs",
)


def error_response(request: HttpRequest, status: int, message: str) -> HttpResponse:
    """NPM's error body `{"error": {"code": status, "message": message}}` with `status`."""
    return api.create_response(
        request, {"error": {"code": status, "message": message}}, status=status
    )


def unavailable_response(request: HttpRequest, problem: Unavailable) -> HttpResponse:
    """503 in NPM's error shape, with Retry-After when the problem is likely to pass."""
    response = error_response(request, problem.status, problem.message)
    if problem.retry_after:
        response["Retry-After"] = str(problem.retry_after)
    return response


def _field_path(loc: tuple | list) -> str:
    parts = [str(p) for p in loc]
    # ninja prefixes the location with "body" and the parameter name
    if parts and parts[0] in {"body", "query", "path", "form", "file"}:
        parts = parts[1:]
        if parts and parts[0] in {"payload", "data", "filters"}:
            parts = parts[1:]
    return "/".join(parts)


def validation_message(errors: list[dict]) -> str:
    """NPM-style text for pydantic errors: `data/<field> <reason>`; several joined by '; '."""
    messages = []
    for error in errors:
        path = _field_path(error.get("loc", ()))
        reason = error.get("msg", "is invalid")
        if reason.startswith("Value error, "):
            reason = reason[len("Value error, ") :]
        if not path:  # the body itself: absent, not JSON, or not an object
            messages.append("data must be a JSON object")
            continue
        if error.get("type") == "extra_forbidden":
            reason = "is not an allowed property"
        elif error.get("type") == "missing":
            reason = "is required"
        messages.append(f"data/{path} {reason}")
    return "; ".join(dict.fromkeys(messages)) or "Invalid request"


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return error_response(request, 400, validation_message(exc.errors))


@api.exception_handler(PortwayError)
def _portway_error(request: HttpRequest, exc: PortwayError) -> HttpResponse:
    response = error_response(request, exc.status, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:  # RFC 9110 10.2.3, on 429 from the login throttle
        response["Retry-After"] = str(retry_after)
    return response


@api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(request, 401, "Authentication required: send a valid Bearer token")


@api.exception_handler(NotAuthenticated)
def _not_authenticated(request: HttpRequest, exc: NotAuthenticated) -> HttpResponse:
    return error_response(request, 401, exc.message)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(request, exc.status_code, str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, str(exc) or "Not found")


@api.exception_handler(DatabaseError)
@api.exception_handler(OSError)
def _storage_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    """A locked, read-only or unreachable database or a full disk: 503 saying what to do."""
    problem = unavailable(exc)
    if problem is None:
        return _unexpected(request, exc)
    log.error("%s %s: %s", request.method, request.path, problem.message, exc_info=exc)
    return unavailable_response(request, problem)


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(request, 500, "Internal error; see the Portway log for details")
