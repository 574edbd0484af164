"""Error answers outside the API's own handlers: styled pages for the UI, NPM's JSON for /api.

Django calls the `handler400/403/404/500` views named in `portway.urls` (and
`CSRF_FAILURE_VIEW`); `ErrorPageMiddleware` styles the bare error responses that views
and Django return without a body (405 from `require_POST`, an empty 404). A database that
is locked, read-only or unreachable, or a full disk, is a 503 whose text says what to do
(`portway.core.errors.unavailable`), not a 500.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from portway.core.errors import Unavailable, unavailable

log = logging.getLogger("portway.web")

# status → (title, message, icon of Tabler's icon font)
PAGES: dict[int, tuple[str, str, str]] = {
    400: (
        "Bad request",
        "Portway could not make sense of this request. Go back, reload the page and try again.",
        "alert-triangle",
    ),
    403: (
        "Access denied",
        "Your account may not open this page. An administrator can give you access.",
        "lock",
    ),
    404: (
        "Page not found",
        "There is nothing at this address: it may have been deleted, or the link is mistyped.",
        "error-404",
    ),
    405: (
        "Not a page",
        "This address is an action: it takes {allowed} requests from Portway's buttons and "
        "cannot be opened with {method}.",
        "hand-stop",
    ),
    500: (
        "Something went wrong",
        "Portway hit an unexpected error and could not finish. The details are in Portway's "
        "log on the server.",
        "mood-confused",
    ),
    503: ("Portway cannot work right now", "", "database-off"),
}
CSRF_MESSAGE = (
    "The form was open too long or came from another site, so Portway did not accept it. "
    "Reload the page and submit it again."
)


def is_api(request: HttpRequest) -> bool:
    """True for the REST API (/api/...): it answers errors in NPM's JSON shape, never HTML."""
    return request.path_info == "/api" or request.path_info.startswith("/api/")


def error_page(
    request: HttpRequest,
    status: int,
    message: str | None = None,
    *,
    allowed: str = "",
) -> HttpResponse:
    """The styled page for `status` (one of PAGES), or NPM's JSON error under /api.

    Args:
        message: replaces the status's standard text (e.g. a 503's reason).
        allowed: for 405, the methods the address takes ("POST").

    The page is rendered without the request: no context processor runs, so nothing
    touches the session or the database, which may be the very thing that failed.
    """
    if is_api(request):
        from portway.core.api import error_response

        return error_response(request, status, message or _api_message(request, status, allowed))
    title, standard, icon = PAGES[status]
    text = message or standard.format(allowed=allowed or "other", method=request.method)
    retry_url = request.get_full_path() if status == 503 and request.method == "GET" else ""
    html = render_to_string(
        "web/error.html",
        {
            "status": status,
            "title": title,
            "message": text,
            "icon": icon,
            "retry_url": retry_url,
        },
    )
    response = HttpResponse(html, status=status)
    response["X-Portway-Message"] = text  # shown by portway.js after an HTMX request
    return response


def _api_message(request: HttpRequest, status: int, allowed: str) -> str:
    if status == 404:
        return f"Not found: {request.path}"
    if status == 405:
        return (
            f"{request.method} is not allowed on {request.path}; use {allowed or 'another method'}"
        )
    if status == 500:
        return "Internal error; see the Portway log for details"
    return PAGES[status][0]


def unavailable_page(request: HttpRequest, problem: Unavailable) -> HttpResponse:
    """503 for a database or disk problem, with Retry-After when it is likely to pass."""
    response = error_page(request, 503, problem.message)
    if problem.retry_after:
        response["Retry-After"] = str(problem.retry_after)
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400."""
    return error_page(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403."""
    return error_page(request, 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404; under /api: `{"error": {"code": 404, "message": "Not found: <path>"}}`."""
    return error_page(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: 503 with what to do when the database or the disk failed, else 500.

    Django calls it inside its `except` block, so `sys.exc_info()` is the error.
    """
    exc = sys.exc_info()[1]
    problem = unavailable(exc) if exc is not None else None
    if problem is not None:
        log.error("%s %s: %s", request.method, request.path, problem.message, exc_info=exc)
        return unavailable_page(request, problem)
    log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return error_page(request, 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a styled 403 that says to reload the form."""
    return error_page(request, 403, CSRF_MESSAGE)


class ErrorPageMiddleware:
    """Gives bare error responses a body: a styled page, or NPM's JSON under /api.

    "Bare" means no body worth showing: empty, or the plain text Django Ninja and
    `HttpResponseNotAllowed` send ("Method not allowed"). Responses that carry their own
    page or JSON (a form re-rendered with errors at 400) and HTMX requests (which swap
    fragments into a page) are left alone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        status = response.status_code
        if status not in PAGES or getattr(response, "streaming", False):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        if len(response.content) > 64 or (
            not is_api(request) and request.headers.get("HX-Request")
        ):
            return response
        styled = error_page(request, status, allowed=response.get("Allow", ""))
        for header in ("Allow", "Retry-After"):
            if header in response:
                styled[header] = response[header]
        return styled
