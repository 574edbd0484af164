"""Signing in, on every path (UI form, `POST /api/tokens`, the 2FA code step).

Each attempt is checked against the brute-force throttle first (`throttle`), failures
are counted and written to the audit log with their source address, and a password
that matches for an account with two-factor login leads to a second step instead of a
session or token.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from portway.accounts import throttle, totp
from portway.accounts.models import User
from portway.core.errors import NotAuthenticated
from portway.nginx.models import AuditLogEntry

INVALID_LOGIN = "Invalid email or password"
INVALID_CODE = "Invalid verification code"
IDENTITY_LOG_MAX = 254


def audit_failure(identity: Any, user: User | None, reason: str, via: str) -> None:
    """A `login-failed` audit entry; the source address is stamped by the model."""
    shown = identity[:IDENTITY_LOG_MAX] if isinstance(identity, str) else ""
    AuditLogEntry.objects.create(
        user=user,
        object_type="user",
        object_id=user.pk if user else 0,
        action="login-failed",
        meta={"identity": shown, "reason": reason, "via": via},
    )


def audit_success(user: User, via: str, **meta: Any) -> None:
    """A `login` audit entry, and the user's last_login."""
    with transaction.atomic():
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
        AuditLogEntry.objects.create(
            user=user,
            object_type="user",
            object_id=user.pk,
            action="login",
            meta={"email": user.email, "name": user.name, "via": via, **meta},
        )


def check_password(identity: Any, secret: Any, *, address: str | None, via: str) -> User:
    """The account whose e-mail and password these are, after the throttle allows trying.

    Args:
        address: the client's IP address (throttle key and audit log).
        via: "ui" or "api", for the audit log.

    Raises:
        TooManyRequests: this address, or this account from this address, is throttled.
        NotAuthenticated: unknown e-mail or wrong password (counted), or a disabled account.
    """
    keys = throttle.keys_for(address, identity if isinstance(identity, str) else None)
    throttle.check(keys)
    email = identity.strip().lower() if isinstance(identity, str) else ""
    user = User.objects.filter(email__iexact=email).first() if email else None
    password = secret if isinstance(secret, str) else ""
    if user is None:
        # Hash anyway so a missing account takes as long to refuse as a wrong password.
        User().set_password(password)
        throttle.failed(keys)
        audit_failure(identity, None, "unknown account", via)
        raise NotAuthenticated(INVALID_LOGIN)
    if not password or not user.check_password(password):
        throttle.failed(keys)
        audit_failure(identity, user, "wrong password", via)
        raise NotAuthenticated(INVALID_LOGIN)
    if user.is_disabled:
        # Only said after the password matched, so it reveals nothing to a guesser.
        audit_failure(identity, user, "account disabled", via)
        raise NotAuthenticated("This account is disabled")
    if not totp.is_enabled(user):
        # With two-factor login the failures are forgotten only once the code is right.
        throttle.succeeded(keys)
    return user


def check_second_factor(user: User, code: Any, *, address: str | None, via: str) -> str:
    """Accept a TOTP or backup code for `user`, who already gave the right password.

    Returns:
        "totp" or "backup-code".

    Raises:
        TooManyRequests: throttled (codes count like passwords).
        FieldError("code"): not a 6-digit or 8-character code (not counted).
        NotAuthenticated: wrong code (counted and audited).
    """
    keys = throttle.keys_for(address, user.email)
    throttle.check(keys)
    cleaned = totp.clean_code(code)
    method = totp.verify(user, cleaned)
    if method is None:
        throttle.failed(keys)
        audit_failure(user.email, user, "wrong two-factor code", via)
        raise NotAuthenticated(INVALID_CODE)
    throttle.succeeded(keys)
    return method
