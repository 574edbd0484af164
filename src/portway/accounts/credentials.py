"""A user's own credentials: named API tokens and two-factor login.

Rules, the same for the API and the UI: a user manages their own tokens and 2FA; an
admin may also list and revoke anyone's tokens and reset (turn off) anyone's 2FA, but
never create a token or enrol 2FA for someone else (that would hand the admin a secret
the user never saw). Every change is audited without its secret.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from portway.accounts import signin, tokens, totp
from portway.accounts.models import ApiToken, LoginThrottle, User
from portway.core.audit import current_source
from portway.core.errors import (
    BadRequest,
    FieldError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from portway.core.params import is_id
from portway.core.wire import iso
from portway.nginx.models import AuditLogEntry


def _self_or_admin(actor: User, target: User) -> None:
    if actor.pk != target.pk and not actor.is_admin:
        raise PermissionDenied("You may only manage your own credentials")


def _self_only(actor: User, target: User, what: str) -> None:
    if actor.pk != target.pk:
        raise PermissionDenied(f"Only the user themself can {what}")


def _audit(actor: User, object_type: str, object_id: int, action: str, meta: dict) -> None:
    AuditLogEntry.objects.create(
        user=actor, object_type=object_type, object_id=object_id, action=action, meta=meta
    )


# --- API tokens -----------------------------------------------------------------------


def serialize_token(row: ApiToken) -> dict[str, Any]:
    """The public view of a token: never its secret."""
    return {
        "id": row.pk,
        "user_id": row.user_id,
        "name": row.name,
        "scope": row.scope,
        "created_on": iso(row.created_on),
        "expires_on": iso(row.expires_on),
        "last_used_on": iso(row.last_used_on) if row.last_used_on else None,
        "last_used_from": row.last_used_from,
    }


def list_tokens(actor: User, target: User) -> QuerySet[ApiToken]:
    """`target`'s tokens by name. Raises PermissionDenied for someone else's, unless admin."""
    _self_or_admin(actor, target)
    return ApiToken.objects.filter(user=target).order_by("name", "id")


def create_token(
    actor: User, target: User, name: Any, expiry: Any, scope: Any
) -> tuple[ApiToken, str]:
    """A new named token for `actor` (who must be `target`); see tokens.create_api_token.

    Raises:
        PermissionDenied: creating a token for someone else.
        FieldError("name" | "expiry" | "scope"): bad value.
    """
    _self_only(actor, target, "create their API tokens")
    with transaction.atomic():
        row, text = tokens.create_api_token(target, name, expiry, scope)
        _audit(
            actor,
            "api-token",
            row.pk,
            "created",
            {"name": row.name, "scope": row.scope, "expires_on": iso(row.expires_on)},
        )
    return row, text


def revoke_token(actor: User, target: User, token_id: Any) -> None:
    """Delete one of `target`'s tokens; it stops working with the next request.

    Raises:
        PermissionDenied: someone else's token, unless admin.
        NotFound: no such token of `target`.
    """
    _self_or_admin(actor, target)
    text = str(token_id)
    row = ApiToken.objects.filter(user=target, pk=int(text)).first() if is_id(text) else None
    if row is None:
        raise NotFound(f"API token {text!r} not found")
    with transaction.atomic():
        _audit(
            actor,
            "api-token",
            row.pk,
            "deleted",
            {"name": row.name, "scope": row.scope, "user_id": target.pk},
        )
        row.delete()


# --- two-factor login -----------------------------------------------------------------


def two_factor_status(actor: User, target: User) -> dict[str, object]:
    """NPM's `{"enabled", "backup_codes_remaining"}` for `target`."""
    _self_or_admin(actor, target)
    return totp.status(target)


def start_two_factor(actor: User, target: User) -> dict[str, str]:
    """Begin enrolment (NPM's POST /users/{id}/2fa): `{"secret", "otpauth_url"}`."""
    _self_only(actor, target, "set up their two-factor login")
    return totp.start(target)


def enable_two_factor(actor: User, target: User, code: Any) -> list[str]:
    """Confirm enrolment with a code; returns the backup codes (shown once)."""
    _self_only(actor, target, "set up their two-factor login")
    with transaction.atomic():
        codes = totp.enable(target, code)
        _audit(actor, "user", target.pk, "2fa-enabled", {"email": target.email})
    return codes


def regenerate_backup_codes(actor: User, target: User, code: Any) -> list[str]:
    """Fresh backup codes, confirmed with a current TOTP code."""
    _self_only(actor, target, "renew their backup codes")
    with transaction.atomic():
        codes = totp.regenerate_backup_codes(target, code)
        _audit(actor, "user", target.pk, "renewed", {"email": target.email, "what": "backup codes"})
    return codes


def disable_two_factor(actor: User, target: User, code: Any = None) -> None:
    """Turn 2FA off: one's own needs a current code; an admin resets another's without one.

    Raises:
        PermissionDenied: a non-admin for someone else.
        FieldError("code"): own 2FA with a missing, malformed or wrong code.
        BadRequest: 2FA is not on.
    """
    _self_or_admin(actor, target)
    if not totp.is_enabled(target):
        raise BadRequest("Two-factor authentication is not enabled")
    if actor.pk == target.pk:
        if code is None or code == "":
            raise FieldError("code", "is required to turn two-factor login off")
        try:
            # Throttled like a sign-in: a stolen session must not guess its way to this.
            signin.check_second_factor(target, code, address=current_source(), via="2fa-disable")
        except NotAuthenticated as exc:
            raise FieldError("code", "is not a current code or an unused backup code") from exc
    with transaction.atomic():
        totp.disable(target)
        action = "2fa-disabled" if actor.pk == target.pk else "2fa-reset"
        _audit(actor, "user", target.pk, action, {"email": target.email})


def reset_two_factor_cli(email: str) -> bool:
    """`portway reset-2fa`: turn off 2FA of the account `email` (a locked-out admin) and
    forget that account's failed sign-in attempts.

    Returns:
        True if it was on.

    Raises:
        NotFound: no such account.
    """
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise NotFound(f"No user with the e-mail address {email!r}")
    with transaction.atomic():
        was_on = totp.disable(user)
        # A locked-out admin also gets their failed-attempt delays forgotten.
        LoginThrottle.objects.filter(key__startswith=f"acct:{user.email}|").delete()
        AuditLogEntry.objects.create(
            user=None,
            object_type="user",
            object_id=user.pk,
            action="2fa-reset",
            meta={"email": user.email, "via": "cli"},
        )
    return was_on
