"""The NPM-compatible REST API instance, its error format and its authentication.

Every app adds a router in its own `api.py`; `portway.urls` mounts this instance at /api.
Errors always have NPM's shape: `{"error": {"code": <status>, "message": <text>}}`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from ninja.utils import check_csrf

from portway import __version__
from portway.core.errors import (
    FieldError,
    NotAuthenticated,
    PermissionDenied,
    PortwayError,
    Unavailable,
    unavailable,
)
from portway.core.validation import field_errors

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

    def validation_error_from_error_contexts(self, error_contexts: list) -> NinjaValidationError:
        """ninja's errors, with each error's `input` kept (ninja drops it).

        The 400 message shows what was sent ("must be a whole number, not "abc""); the
        value is quoted by `portway.core.validation.given`, never pasted raw.
        """
        exc = super().validation_error_from_error_contexts(error_contexts)
        inputs = [
            error.get("input")
            for context in error_contexts
            for error in context.pydantic_validation_error.errors(include_url=False)
        ]
        if len(inputs) == len(exc.errors):
            for error, value in zip(exc.errors, inputs, strict=True):
                error["input"] = value
        return exc


def _unstorable_text(data: Any) -> tuple[str, str] | None:
    """(slash path, reason) of the first JSON string or key no database stores, or None.

    A lone UTF-16 surrogate (a `\\ud800` escape without its pair) is valid JSON but has
    no UTF-8 form, so SQLite, files and the response encoder fail on it; NUL (U+0000) is
    refused by PostgreSQL. The walk is iterative: nesting depth is bounded by `json`.
    """
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}/{key}" if path else str(key)
                if _bad_character(key):
                    return path, f"has a key {_bad_character(key)}"
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend(
                (f"{path}/{index}" if path else str(index), item)
                for index, item in enumerate(value)
            )
        elif isinstance(value, str) and _bad_character(value):
            return path, f"must not contain {_bad_character(value)}"
    return None


def _bad_character(text: str) -> str | None:
    if "\x00" in text:
        return "the NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = text[exc.start]
        return f"a lone UTF-16 surrogate (U+{ord(char):04X}; a \\u escape without its pair)"
    return None


class StorableJSONParser(Parser):
    """ninja's JSON body parser, refusing strings nothing downstream can store.

    Raises:
        FieldError: naming the field (ninja wraps it in a 400 that `_http_error` unwraps).
    """

    def parse_body(self, request: HttpRequest) -> Any:
        data = super().parse_body(request)
        problem = _unstorable_text(data)
        if problem is not None:
            path, reason = problem
            if not path:
                raise FieldError("", reason)
            raise FieldError(path, reason)
        return data


api = PortwayAPI(
    parser=StorableJSONParser(),
    title="Portway API",
    version=__version__,
    description="Nginx Proxy Manager compatible API served by Portway.",
    auth=BearerAuth(),
    urls_namespace="api",
    openapi_url="/schema",
    docs_url="/docs",
    # Swagger UI's default online validator badge would send the schema's URL to
    # validator.swagger.io; the docs page asks nothing of other sites
    docs=Swagger(settings={"validatorUrl": None}),
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


# ninja's location of an error: where the value came from, then the parameter's name
_SOURCES = {"body", "query", "path", "form", "file", "header", "cookie"}
_BODY_PARAMS = {"payload", "data", "filters"}


def validation_message(errors: list[dict]) -> str:
    """NPM-style text for ninja's validation errors, several joined by '; '.

    Body fields read `data/<field> <reason>` as in NPM; URL and query parameters name
    themselves. Reasons come from `portway.core.validation` (never pydantic's wording).
    """
    messages = []
    for error in errors:
        loc = list(error.get("loc", ()))
        source = loc.pop(0) if loc and loc[0] in _SOURCES else "body"
        if source in ("body", "form", "file") and loc and loc[0] in _BODY_PARAMS:
            loc.pop(0)
        path, reason = next(iter(field_errors([{**error, "loc": loc}]).items()))
        if source == "path":
            messages.append(f"{path} in the URL {reason}")
        elif source == "query":
            messages.append(f"query parameter {path} {reason}")
        elif not path:  # the body itself: absent, not JSON, or not an object
            messages.append("data must be a JSON object")
        else:
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
    message = str(exc)
    if isinstance(exc.__cause__, FieldError):
        message = exc.__cause__.message.replace("data/ ", "data ")
    elif exc.status_code == 400 and message.startswith("Cannot parse request body"):
        # ninja's words for a body its JSON parser refused
        message = "data must be a JSON object: the request body is not valid JSON"
    return error_response(request, exc.status_code, message)


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
