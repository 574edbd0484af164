"""UI pages: first-run setup, login and logout."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from portway.accounts.services import create_first_admin
from portway.core.errors import Conflict, PortwayError
from portway.web.decorators import page, setup_needed
from portway.web.forms import FormErrors

# The services name the password field after NPM's wire format.
_SERVICE_FIELDS = {"auth/secret": "password", "secret": "password"}


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
        if not values["name"]:
            errors.add("name", "Enter your name.")
        if not values["email"]:
            errors.add("email", "Enter an e-mail address; you will sign in with it.")
        if not password:
            errors.add("password", "Choose a password.")
        elif password != request.POST.get("password2", ""):
            errors.add("password2", "The two passwords do not match.")
        else:
            try:
                validate_password(password)
            except ValidationError as exc:
                for reason in exc.messages:
                    errors.add("password", reason)
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
        },
        status=status,
    )


@page(public=True)
def login_view(request: HttpRequest) -> HttpResponse:
    """E-mail and password sign-in through Django's auth backends."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    if request.user.is_authenticated and request.method == "GET":
        return redirect(next_url or "web:dashboard")
    error = ""
    email = ""
    if request.method == "POST":
        email = request.POST.get("email", "").strip()
        password = request.POST.get("password", "")
        user = authenticate(request, username=email, password=password) if email else None
        if user is None:
            error = "Invalid e-mail address or password."
        else:
            login(request, user)
            return redirect(next_url or "web:dashboard")
    return render(
        request,
        "accounts/login.html",
        {"title": "Sign in", "error": error, "email": email, "next": next_url},
        status=400 if error else 200,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You have been signed out.")
    return redirect("accounts:login")
