"""The login gate's pages, served on each gated site's own domain under /.portway/.

nginx proxies /.portway/ of a gated site to Portway's gate socket (portway.gate_server),
which marks the request `environ["portway.gate"]`; without that mark these views answer
404, so the admin port never serves them.

    GET/POST /.portway/login      e-mail and password (throttled, audited), then the
                                  two-factor code when the account has one
    GET/POST /.portway/logout     sign out everywhere (gate and admin UI sessions)
    GET      /.portway/gate.css   the pages' stylesheet (no inline style: strict CSP)

No Django session or CSRF cookie is set on the site: the upstream application may use
cookies of the same names. Cross-site form posts are refused by checking Origin (or
Referer) against the site itself; the 2FA step carries a signed, five-minute token of
who passed the password step. `next` (where the visitor was going) must be a path on
this same site; anything else becomes "/" (no open redirect).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any

from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt

from portway.accounts import gate, signin, totp
from portway.accounts.models import User
from portway.core.audit import client_address
from portway.core.errors import FieldError, NotAuthenticated, TooManyRequests

PENDING_SALT = "portway.accounts.gate.pending"
PENDING_SECONDS = 300
LOGIN_PATH = "/.portway/login"
NEXT_MAX = 2000
STYLESHEET = Path(__file__).resolve().parent / "static" / "accounts" / "gate.css"


def gate_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Only on the gate socket; CSRF by Origin/Referer (no CSRF cookie on the site)."""

    @csrf_exempt
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.environ.get("portway.gate"):
            raise Http404
        if request.method == "POST" and not _same_origin(request):
            return HttpResponse("Cross-site form posts are refused.", status=403)
        response = view(request, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        response["Referrer-Policy"] = "same-origin"
        return response

    return wrapped


def _site(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _same_origin(request: HttpRequest) -> bool:
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin == _site(request)
    referer = request.headers.get("Referer")
    if referer is not None:
        return referer == _site(request) or referer.startswith(_site(request) + "/")
    return True  # not a browser: nothing to forge


def safe_next(request: HttpRequest, candidate: Any) -> str:
    """`candidate` when it is a path on this site, else "/"."""
    if not isinstance(candidate, str) or not candidate or len(candidate) > NEXT_MAX:
        return "/"
    if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return "/"
    if not url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}):
        return "/"
    if candidate.startswith("/.portway/"):
        return "/"
    return candidate


def _host_name(request: HttpRequest) -> str:
    host = request.get_host()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def _signed_in(request: HttpRequest, user: User, next_url: str, method: str) -> HttpResponse:
    extra = {"second_factor": method} if method else {}
    signin.audit_success(user, "gate", site=_host_name(request), **extra)
    response = HttpResponseRedirect(next_url)
    domain = gate.cookie_domain_for(_host_name(request))
    if domain is not None and gate.COOKIE_NAME in request.COOKIES:
        # a host-only cookie from before the cookie domain was set would shadow the new one
        _expire(response, None)
    response.set_cookie(
        gate.COOKIE_NAME,
        gate.cookie_value(user, gate.cookie_scope(_host_name(request))),
        max_age=gate.SESSION_SECONDS,
        domain=domain,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


def _expire(response: HttpResponse, domain: str | None) -> None:
    """Remove the gate cookie of `domain` (None: the site's host-only one).

    As a plain Set-Cookie header beside `response.cookies` (Django keeps one cookie per
    name there, and sign-in may set the parent domain's while removing the site's own).
    """
    attributes = f"; Domain={domain}" if domain else ""
    response.headers["Set-Cookie"] = (
        f'{gate.COOKIE_NAME}=""; Max-Age=0; Path=/{attributes}; HttpOnly; SameSite=Lax'
    )


def _form(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(
        request,
        "accounts/gate_login.html",
        {"site": _host_name(request), "action": LOGIN_PATH, **context},
        status=status,
    )


def _throttled(request: HttpRequest, context: dict[str, Any], exc: TooManyRequests):
    response = _form(request, {**context, "error": exc.message}, 429)
    response["Retry-After"] = str(exc.retry_after)
    return response


@gate_page
def login(request: HttpRequest) -> HttpResponse:
    """The sign-in form; a POST with `pending` is the two-factor step."""
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    context: dict[str, Any] = {"next": next_url}
    if request.method != "POST":
        return _form(request, context)
    address = client_address(request)
    if "pending" in request.POST:
        return _second_step(request, context, address)
    email = request.POST.get("email", "").strip()[:254]
    context["email"] = email
    try:
        user = signin.check_password(
            email, request.POST.get("password", ""), address=address, via="gate"
        )
    except TooManyRequests as exc:
        return _throttled(request, context, exc)
    except NotAuthenticated as exc:
        message = "Invalid e-mail address or password."
        if exc.message != signin.INVALID_LOGIN:
            message = exc.message
        return _form(request, {**context, "error": message}, 400)
    if totp.is_enabled(user):
        pending = signing.dumps(
            {"u": user.pk, "t": user.token_generation, "s": user.session_generation},
            salt=PENDING_SALT,
            compress=False,
        )
        return _form(request, {**context, "pending": pending})
    return _signed_in(request, user, next_url, "")


def _second_step(request: HttpRequest, context: dict[str, Any], address: str | None):
    try:
        pending = signing.loads(
            request.POST.get("pending", ""), salt=PENDING_SALT, max_age=PENDING_SECONDS
        )
        user = User.objects.get(
            pk=pending["u"],
            token_generation=pending["t"],
            session_generation=pending["s"],
            is_disabled=False,
        )
    except (signing.BadSignature, User.DoesNotExist, KeyError, TypeError):
        return _form(request, {**context, "error": "Sign in again: that step has expired."}, 400)
    context["pending"] = request.POST["pending"]
    try:
        method = signin.check_second_factor(
            user, request.POST.get("code", ""), address=address, via="gate"
        )
    except TooManyRequests as exc:
        return _throttled(request, context, exc)
    except FieldError as exc:
        return _form(request, {**context, "error": f"The code {exc.reason}."}, 400)
    except NotAuthenticated:
        return _form(request, {**context, "error": "That code is not valid."}, 400)
    return _signed_in(request, user, context["next"], method)


@gate_page
def logout(request: HttpRequest) -> HttpResponse:
    """GET: a sign-out button; POST: end every session of the user, here and in the admin UI."""
    if request.method != "POST":
        return render(request, "accounts/gate_logout.html", {"site": _host_name(request)})
    header = request.META.get("HTTP_COOKIE", "")
    for part in header.split(";")[:50]:
        key, _, value = part.strip().partition("=")
        state = gate.session_user(value, _host_name(request)) if key == gate.COOKIE_NAME else None
        if state is not None:
            gate.end_sessions(state.id)
            break
    response = HttpResponseRedirect(LOGIN_PATH)
    domain = gate.cookie_domain_for(_host_name(request))
    response.delete_cookie(gate.COOKIE_NAME, domain=domain, samesite="Lax")
    if domain is not None:
        _expire(response, None)
    return response


@cache
def _stylesheet() -> bytes:
    return STYLESHEET.read_bytes()


@gate_page
def stylesheet(request: HttpRequest) -> HttpResponse:
    """The gate pages' CSS (served here: the site's /static/ is the upstream's)."""
    response = HttpResponse(_stylesheet(), content_type="text/css; charset=utf-8")
    return response
