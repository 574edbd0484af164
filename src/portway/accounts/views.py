"""UI pages: first-run setup, login and logout."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from portway.accounts import signin, totp
from portway.accounts.services import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    clean_email,
    clean_name,
    create_first_admin,
)
from portway.core.audit import client_address
from portway.core.errors import (
    Conflict,
    FieldError,
    NotAuthenticated,
    PortwayError,
    TooManyRequests,
)
from portway.web.decorators import page, setup_needed
from portway.web.forms import FormErrors

PENDING_2FA = "portway_pending_2fa"
PENDING_SECONDS = 300

# The services name the password field after NPM's wire format.
_SERVICE_FIELDS = {"auth/secret": "password", "secret": "password"}


PASSWORD_RULE = f"{PASSWORD_MIN} to {PASSWORD_MAX} characters"


def _check_setup_form(
    values: dict[str, str], password: str, again: str, errors: FormErrors
) -> None:
    """Every problem of the setup form at once, with the service's own rules.

    The service stops at the first bad field; a person fixing a form wants all of them.
    """
    if not values["name"]:
        errors.add("name", "Enter your name.")
    else:
        _collect(errors, "name", clean_name, values["name"])
    if not values["email"]:
        errors.add("email", "Enter an e-mail address; you will sign in with it.")
    else:
        _collect(errors, "email", clean_email, values["email"])
    if not password:
        errors.add("password", f"Choose a password of {PASSWORD_RULE}.")
    elif not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        errors.add("password", f"Use {PASSWORD_RULE}; this one has {len(password)}.")
    else:
        try:
            validate_password(password)
        except ValidationError as exc:
            for reason in exc.messages:
                errors.add("password", reason)
    if password and again != password:
        errors.add("password2", "The two passwords do not match.")


def _collect(errors: FormErrors, field: str, clean: Callable[[str], str], value: str) -> bool:
    """Run one of the service's checks; its message goes beside `field`. True if it failed."""
    try:
        clean(value)
    except FieldError as exc:
        errors.add(field, exc.reason[:1].upper() + exc.reason[1:] + ".")
        return True
    return False


@page(public=True, setup=True)
def setup(request: HttpRequest) -> HttpResponse:
    """Create the first administrator; only reachable while no account exists."""
    if not setup_needed():
        return redirect("web:dashboard" if request.user.is_authenticated else "accounts:login")
    errors = FormErrors()
    values = {"name": "", "email": ""}
    if request.method == "POST":
        values = {
            "name": request.POST.get("name", "").strip(),
            "email": request.POST.get("email", "").strip(),
        }
        password = request.POST.get("password", "")
        _check_setup_form(values, password, request.POST.get("password2", ""), errors)
        if not errors:
            try:
                user = create_first_admin(values["email"], password, values["name"])
            except Conflict:
                messages.info(request, "Portway is already set up. Sign in to continue.")
                return redirect("accounts:login")
            except PortwayError as exc:
                service_errors = FormErrors.of(exc)
                for field, reasons in service_errors.fields.items():
                    for reason in reasons:
                        errors.add(_SERVICE_FIELDS.get(field, field), reason.capitalize())
                errors.general.extend(service_errors.general)
            else:
                authenticated = authenticate(request, username=user.email, password=password)
                login(
                    request,
                    authenticated or user,
                    backend="django.contrib.auth.backends.ModelBackend",
                )
                messages.success(
                    request, f"Welcome to Portway, {user.name}. Add your first proxy host next."
                )
                return redirect("web:dashboard")
    status = 400 if errors else 200
    return render(
        request,
        "accounts/setup.html",
        {
            "title": "Set up Portway",
            "errors": errors,
            "values": values,
            "unclaimed": errors.unclaimed(["name", "email", "password", "password2"]),
            "password_hint": f"{PASSWORD_RULE[:1].upper()}{PASSWORD_RULE[1:]}; any characters.",
        },
        status=status,
    )


def _safe_next(request: HttpRequest, candidate: str) -> str:
    """`candidate` if it stays on this site, else "" (no open redirect)."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _throttled(request: HttpRequest, template: str, context: dict, exc: TooManyRequests):
    response = render(request, template, {**context, "error": exc.message}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


@page(public=True)
def login_view(request: HttpRequest) -> HttpResponse:
    """E-mail and password sign-in, throttled; a second step when 2FA is on."""
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next") or "")
    if request.user.is_authenticated and request.method == "GET":
        return redirect(next_url or "web:dashboard")
    error = ""
    email = ""
    context = {"title": "Sign in", "next": next_url}
    if request.method == "POST":
        email = request.POST.get("email", "").strip()
        password = request.POST.get("password", "")
        context["email"] = email
        try:
            user = signin.check_password(email, password, address=client_address(request), via="ui")
        except TooManyRequests as exc:
            return _throttled(request, "accounts/login.html", context, exc)
        except NotAuthenticated as exc:
            error = (
                "Invalid e-mail address or password."
                if exc.message == signin.INVALID_LOGIN
                else exc.message
            )
        else:
            if totp.is_enabled(user):
                # Nothing is logged in yet: the session only remembers who passed step one.
                request.session.cycle_key()
                request.session[PENDING_2FA] = {
                    "uid": user.pk,
                    "gen": user.token_generation,
                    "at": int(time.time()),
                    "next": next_url,
                }
                return redirect("accounts:login_2fa")
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            signin.audit_success(user, "ui")
            return redirect(next_url or "web:dashboard")
    return render(
        request,
        "accounts/login.html",
        {**context, "error": error, "email": email},
        status=400 if error else 200,
    )


def _pending_user(request: HttpRequest):  # noqa: ANN202
    from portway.accounts.models import User

    pending = request.session.get(PENDING_2FA)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None, ""
    user = User.objects.filter(pk=pending.get("uid"), is_disabled=False).first()
    if user is None or user.token_generation != pending.get("gen"):
        return None, ""
    return user, _safe_next(request, pending.get("next") or "")


@page(public=True)
def login_2fa(request: HttpRequest) -> HttpResponse:
    """Second sign-in step: a code from the authenticator app, or a backup code."""
    user, next_url = _pending_user(request)
    if user is None:
        request.session.pop(PENDING_2FA, None)
        messages.info(request, "Sign in again: the two-factor step has expired.")
        return redirect("accounts:login")
    error = ""
    context = {"title": "Two-factor authentication"}
    if request.method == "POST":
        try:
            method = signin.check_second_factor(
                user, request.POST.get("code", ""), address=client_address(request), via="ui"
            )
        except TooManyRequests as exc:
            return _throttled(request, "accounts/login_2fa.html", context, exc)
        except FieldError as exc:
            error = f"The code {exc.reason}."
        except NotAuthenticated:
            error = "That code is not valid. Try the current code from your app."
        else:
            request.session.pop(PENDING_2FA, None)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            signin.audit_success(user, "ui", second_factor=method)
            if method == "backup-code":
                messages.warning(
                    request, "You signed in with a backup code; it cannot be used again."
                )
            return redirect(next_url or "web:dashboard")
    return render(
        request,
        "accounts/login_2fa.html",
        {**context, "error": error},
        status=400 if error else 200,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Sign out everywhere: every UI session and login-gate session of the user ends."""
    from portway.accounts.gate import end_sessions

    if request.user.is_authenticated:
        end_sessions(request.user.pk)
    logout(request)
    messages.info(request, "You have been signed out.")
    return redirect("accounts:login")
