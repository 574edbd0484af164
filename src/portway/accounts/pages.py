"""UI pages for people and credentials: users (admin), your account, 2FA, API tokens.

Every rule lives in `services` / `credentials`, the same functions the API calls; these
views only turn form fields into their arguments and their errors into inline messages.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from portway.accounts import credentials, services, totp
from portway.accounts.models import User
from portway.accounts.permissions import LEVELS, SECTIONS, permission_for
from portway.core.errors import NotFound, PermissionDenied, PortwayError
from portway.web.decorators import page
from portway.web.forms import FormErrors

# Service field paths (NPM's wire names) → the inputs that show them.
_FIELDS = {"auth/secret": "password", "secret": "password", "roles": "is_admin"}
SECTION_LABELS = {
    "proxy_hosts": "Proxy hosts",
    "redirection_hosts": "Redirection hosts",
    "dead_hosts": "404 hosts",
    "streams": "Streams",
    "access_lists": "Access lists",
    "certificates": "Certificates",
}
EXPIRY_CHOICES = [("30d", "30 days"), ("90d", "90 days"), ("180d", "180 days"), ("1y", "1 year")]


def _errors_of(exc: PortwayError) -> FormErrors:
    found = FormErrors.of(exc)
    errors = FormErrors()
    for field, reasons in found.fields.items():
        for reason in reasons:
            errors.add(_FIELDS.get(field, field), reason)
    errors.general.extend(found.general)
    return errors


def _go(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _require_admin(request: HttpRequest) -> None:
    if not request.user.is_admin:
        raise PermissionDenied("Only administrators may manage users")


def _target(request: HttpRequest, user_id: int) -> User:
    _require_admin(request)
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


def _forbidden(request: HttpRequest, exc: PortwayError) -> HttpResponse:
    status = exc.status if exc.status in (403, 404) else 400
    return render(
        request,
        "accounts/denied.html",
        {"title": "Not allowed", "reason": exc.message},
        status=status,
    )


# --- users (admin) ----------------------------------------------------------------------


@page
def user_list(request: HttpRequest) -> HttpResponse:
    try:
        users = list(services.list_users(request.user, request.GET.get("q") or None))
    except PortwayError as exc:
        return _forbidden(request, exc)
    enabled = {u.pk for u in users if totp.is_enabled(u)}
    rows = [{"user": u, "two_factor": u.pk in enabled} for u in users]
    return render(
        request,
        "accounts/users.html",
        {"title": "Users", "rows": rows, "query": request.GET.get("q", "")},
    )


def _permission_values(post: Any) -> dict[str, str]:
    values = {"visibility": post.get("visibility", "")}
    for section in SECTIONS:
        values[section] = post.get(section, "")
    return values


@page
def user_create(request: HttpRequest) -> HttpResponse:
    try:
        _require_admin(request)
    except PortwayError as exc:
        return _forbidden(request, exc)
    errors = FormErrors()
    values = {"name": "", "email": "", "nickname": "", "is_admin": False}
    if request.method == "POST":
        values = {
            "name": request.POST.get("name", ""),
            "email": request.POST.get("email", ""),
            "nickname": request.POST.get("nickname", ""),
            "is_admin": request.POST.get("is_admin") == "on",
        }
        password = request.POST.get("password", "")
        try:
            user = services.create_user(
                request.user,
                name=values["name"],
                email=values["email"],
                nickname=values["nickname"],
                roles=["admin"] if values["is_admin"] else [],
                password=password or None,
            )
        except PortwayError as exc:
            errors = _errors_of(exc)
        else:
            messages.success(
                request,
                f"User {user.name} created. They can see nothing yet: grant sections below.",
            )
            return redirect("accounts:user_edit", user_id=user.pk)
    return render(
        request,
        "accounts/user_form.html",
        {
            "title": "New user",
            "values": values,
            "errors": errors,
            "creating": True,
            "unclaimed": errors.unclaimed(["name", "email", "nickname", "password", "is_admin"]),
        },
        status=400 if errors else 200,
    )


@page
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    try:
        target = _target(request, user_id)
    except PortwayError as exc:
        return _forbidden(request, exc)
    permission = permission_for(target)
    errors = FormErrors()
    values: dict[str, Any] = {
        "name": target.name,
        "email": target.email,
        "nickname": target.nickname,
        "is_admin": target.is_admin,
        "is_disabled": target.is_disabled,
    }
    perms = {field: getattr(permission, field) for field in ("visibility", *SECTIONS)}
    if request.method == "POST":
        values = {
            "name": request.POST.get("name", ""),
            "email": request.POST.get("email", ""),
            "nickname": request.POST.get("nickname", ""),
            "is_admin": request.POST.get("is_admin") == "on",
            "is_disabled": request.POST.get("is_disabled") == "on",
        }
        perms = _permission_values(request.POST)
        password = request.POST.get("password", "")
        changes = {
            "name": values["name"],
            "email": values["email"],
            "nickname": values["nickname"],
            "roles": ["admin"] if values["is_admin"] else [],
            "is_disabled": values["is_disabled"],
        }
        try:
            # One form, several service calls: check everything before changing anything.
            for field, value in perms.items():
                choices = ("all", "user") if field == "visibility" else LEVELS
                if value not in choices:
                    errors.add(field, f"must be one of: {', '.join(choices)}")
            if password:
                services.clean_password(password, "password")
            if not errors:
                services.update_user(request.user, target, changes)
                if perms != {f: getattr(permission, f) for f in perms}:
                    services.set_permissions(request.user, target, perms)
                if password:
                    services.change_password(request.user, target, password)
        except PortwayError as exc:
            errors = _errors_of(exc)
        if not errors:
            messages.success(request, f"User {values['name'].strip()} saved.")
            return redirect("accounts:user_list")
    return render(
        request,
        "accounts/user_form.html",
        {
            "title": f"Edit {target.name}",
            "target": target,
            "values": values,
            "perms": perms,
            "sections": [(s, SECTION_LABELS[s], perms.get(s)) for s in SECTIONS],
            "levels": LEVELS,
            "errors": errors,
            "creating": False,
            "two_factor": totp.is_enabled(target),
            "unclaimed": errors.unclaimed(
                [
                    "name",
                    "email",
                    "nickname",
                    "password",
                    "is_admin",
                    "is_disabled",
                    "visibility",
                    *SECTIONS,
                ]
            ),
        },
        status=400 if errors else 200,
    )


def _user_action(request: HttpRequest, user_id: int, action: str) -> HttpResponse:
    try:
        target = _target(request, user_id)
        if action == "delete":
            services.delete_user(request.user, target)
            messages.success(request, f"User {target.name} deleted; what they owned is now yours.")
        elif action in ("enable", "disable"):
            services.update_user(request.user, target, {"is_disabled": action == "disable"})
            messages.success(request, f"User {target.name} {action}d.")
        elif action == "reset-2fa":
            credentials.disable_two_factor(request.user, target)
            messages.success(request, f"Two-factor login of {target.name} reset.")
        elif action == "login-as":
            services.check_login_as(request.user, target)
            actor = request.user
            login(request, target, backend="django.contrib.auth.backends.ModelBackend")
            services.audit_login_as(actor, target)
            messages.info(request, f"You are now signed in as {target.name}. Log out to return.")
            return _go(request, "/")
    except PortwayError as exc:
        messages.error(request, exc.message)
    return _go(request, "/users")


@page
@require_POST
def user_delete(request: HttpRequest, user_id: int) -> HttpResponse:
    return _user_action(request, user_id, "delete")


@page
@require_POST
def user_enable(request: HttpRequest, user_id: int) -> HttpResponse:
    return _user_action(request, user_id, "enable")


@page
@require_POST
def user_disable(request: HttpRequest, user_id: int) -> HttpResponse:
    return _user_action(request, user_id, "disable")


@page
@require_POST
def user_reset_2fa(request: HttpRequest, user_id: int) -> HttpResponse:
    return _user_action(request, user_id, "reset-2fa")


@page
@require_POST
def user_login_as(request: HttpRequest, user_id: int) -> HttpResponse:
    return _user_action(request, user_id, "login-as")


# --- your account -----------------------------------------------------------------------


@page
def account(request: HttpRequest) -> HttpResponse:
    """Your name, nickname and e-mail; your password (the current one is required)."""
    user = request.user
    errors = FormErrors()
    values = {"name": user.name, "email": user.email, "nickname": user.nickname}
    form = request.POST.get("form")
    if request.method == "POST" and form == "profile":
        values = {k: request.POST.get(k, "") for k in ("name", "email", "nickname")}
        try:
            services.update_user(user, user, values)
        except PortwayError as exc:
            errors = _errors_of(exc)
        else:
            messages.success(request, "Your details were saved.")
            return redirect("accounts:account")
    elif request.method == "POST" and form == "password":
        new = request.POST.get("new_password", "")
        if new != request.POST.get("new_password2", ""):
            errors.add("new_password2", "The two passwords do not match.")
        else:
            try:
                services.change_password(user, user, new, request.POST.get("current", ""))
            except PortwayError as exc:
                for field, reasons in FormErrors.of(exc).fields.items():
                    for reason in reasons:
                        errors.add("new_password" if field == "secret" else field, reason)
                errors.general.extend(FormErrors.of(exc).general)
            else:
                update_session_auth_hash(request, user)  # stay signed in here
                messages.success(request, "Your password was changed; your old API logins ended.")
                return redirect("accounts:account")
    return render(
        request,
        "accounts/account.html",
        {
            "title": "Your account",
            "values": values,
            "errors": errors,
            "form": form,
            "two_factor": totp.status(user),
            "unclaimed": errors.unclaimed(
                ["name", "email", "nickname", "current", "new_password", "new_password2"]
            ),
        },
        status=400 if errors else 200,
    )


@page
def two_factor(request: HttpRequest) -> HttpResponse:
    """Set up, confirm, renew backup codes for, or turn off your two-factor login."""
    user = request.user
    errors = FormErrors()
    backup_codes: list[str] | None = None
    action = request.POST.get("action") if request.method == "POST" else None
    try:
        if action == "start":
            credentials.start_two_factor(user, user)
        elif action == "enable":
            backup_codes = credentials.enable_two_factor(user, user, request.POST.get("code", ""))
            messages.success(request, "Two-factor login is on.")
        elif action == "backup-codes":
            backup_codes = credentials.regenerate_backup_codes(
                user, user, request.POST.get("code", "")
            )
            messages.success(request, "New backup codes made; the old ones no longer work.")
        elif action == "disable":
            credentials.disable_two_factor(user, user, request.POST.get("code", ""))
            messages.success(request, "Two-factor login is off.")
            return redirect("accounts:two_factor")
    except PortwayError as exc:
        errors = FormErrors.of(exc)
    pending = totp.pending_secret(user)
    return render(
        request,
        "accounts/two_factor.html",
        {
            "title": "Two-factor login",
            "status": totp.status(user),
            "pending_secret": pending,
            "backup_codes": backup_codes,
            "errors": errors,
            "action": action,
            "unclaimed": errors.unclaimed(["code"]),
        },
        status=400 if errors else 200,
    )


@page
def two_factor_qr(request: HttpRequest) -> HttpResponse:
    """The QR code of your pending set-up, drawn here (PNG), never by another site."""
    secret = totp.pending_secret(request.user)
    if secret is None:
        return HttpResponse(
            "No two-factor set-up in progress", status=404, content_type="text/plain"
        )
    response = HttpResponse(
        totp.qr_png(totp.otpauth_url(request.user, secret)), content_type="image/png"
    )
    response["Cache-Control"] = "no-store"
    return response


@page
def api_tokens(request: HttpRequest) -> HttpResponse:
    """Your named API tokens: create (the secret is shown once), see last use, revoke."""
    user = request.user
    errors = FormErrors()
    created: str | None = None
    values = {"name": "", "expiry": "90d", "scope": "read"}
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in values}
        try:
            row, created = credentials.create_token(
                user, user, values["name"], values["expiry"], values["scope"]
            )
        except PortwayError as exc:
            errors = FormErrors.of(exc)
        else:
            messages.success(
                request, f"API token {row.name} created. Copy it now: it is shown only once."
            )
            values = {"name": "", "expiry": "90d", "scope": "read"}
    return render(
        request,
        "accounts/api_tokens.html",
        {
            "title": "API tokens",
            "tokens": credentials.list_tokens(user, user),
            "created": created,
            "values": values,
            "errors": errors,
            "expiry_choices": EXPIRY_CHOICES,
            "unclaimed": errors.unclaimed(["name", "expiry", "scope"]),
        },
        status=400 if errors else 200,
    )


@page
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        credentials.revoke_token(request.user, request.user, token_id)
    except PortwayError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "API token revoked.")
    return _go(request, "/account/tokens")
