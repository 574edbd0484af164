"""Two-factor login: TOTP (RFC 6238, 6 digits, 30 s, SHA-1) with one-time backup codes.

The API mirrors NPM v2.13's `/api/users/{id}/2fa` endpoints: set-up starts with a
pending secret (`start`), a correct code confirms it and yields backup codes (`enable`),
and logins then need a code (`verify`). Codes are computed with pyotp; the QR code for
authenticator apps is drawn by segno on this server (`qr_png`), never by a third party.
"""

from __future__ import annotations

import hmac
import io
import re
import secrets
import time

import pyotp
import segno
from django.db import transaction
from django.utils import timezone

from portway.accounts import vault
from portway.accounts.models import TwoFactor, User
from portway.core.errors import BadRequest, FieldError

ISSUER = "Portway"
BACKUP_CODE_COUNT = 8
STEP_SECONDS = 30
# Accept the previous and next step too: phone clocks drift (RFC 6238 section 5.2).
VALID_WINDOW = 1
_TOTP_CODE = re.compile(r"^\d{6}$")
_BACKUP_CODE = re.compile(r"^[0-9A-Fa-f]{8}$")


def clean_code(value: object, field: str = "code", *, backup: bool = True) -> str:
    """A 6-digit TOTP code or (if `backup`) an 8-character backup code, spaces removed.

    Raises:
        FieldError(field): not a string, or neither 6 digits nor 8 hex characters.
    """
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    code = value.replace(" ", "").replace("-", "")
    if _TOTP_CODE.match(code) or (backup and _BACKUP_CODE.match(code)):
        return code
    if backup:
        raise FieldError(
            field, "must be a 6-digit code from your app or an 8-character backup code"
        )
    raise FieldError(field, "must be the 6-digit code from your authenticator app")


def _record(user: User) -> TwoFactor:
    record, _ = TwoFactor.objects.get_or_create(user=user)
    return record


def is_enabled(user: User) -> bool:
    """Whether logins of `user` need a second factor."""
    return TwoFactor.objects.filter(user=user, enabled=True).exists()


def status(user: User) -> dict[str, object]:
    """NPM's `{"enabled", "backup_codes_remaining"}`."""
    record = TwoFactor.objects.filter(user=user).first()
    enabled = bool(record and record.enabled)
    return {
        "enabled": enabled,
        "backup_codes_remaining": len(record.backup_codes) if enabled and record else 0,
    }


def otpauth_url(user: User, secret: str) -> str:
    """The `otpauth://totp/...` URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def start(user: User) -> dict[str, str]:
    """Begin set-up: a new pending secret (replacing any earlier pending one).

    Returns:
        {"secret": base32 text, "otpauth_url": URI}; the secret is shown for manual
        entry and is not active until `enable` confirms a code.

    Raises:
        BadRequest: two-factor login is already on.
    """
    with transaction.atomic():
        record = TwoFactor.objects.select_for_update().filter(user=user).first() or _record(user)
        if record.enabled:
            raise BadRequest("Two-factor authentication is already enabled")
        secret = pyotp.random_base32()
        record.pending_secret = vault.encrypt(secret)
        record.save(update_fields=["pending_secret", "modified_on"])
    return {"secret": secret, "otpauth_url": otpauth_url(user, secret)}


def pending_secret(user: User) -> str | None:
    """The secret of a set-up in progress (for the QR code), or None."""
    record = TwoFactor.objects.filter(user=user).first()
    if record is None or record.enabled or not record.pending_secret:
        return None
    return vault.decrypt(record.pending_secret)


def qr_png(text: str) -> bytes:
    """A PNG QR code of `text` (segno, error correction M, 5 px modules)."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=5, border=2)
    return buffer.getvalue()


def _matching_step(secret: str, code: str, after_step: int) -> int | None:
    """The time step within the window whose code is `code`, if newer than `after_step`."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    current = int(now // STEP_SECONDS)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if step <= after_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _new_backup_codes() -> tuple[list[str], list[str]]:
    plain = [secrets.token_hex(4).upper() for _ in range(BACKUP_CODE_COUNT)]
    return plain, [vault.digest("backup-code", code) for code in plain]


def enable(user: User, code: object) -> list[str]:
    """Confirm the pending secret with a current code; turn two-factor login on.

    Returns:
        The backup codes, in plain text: shown once, stored only as keyed hashes.

    Raises:
        FieldError("code"): malformed or wrong code.
        BadRequest: no set-up in progress, or already enabled.
    """
    cleaned = clean_code(code, backup=False)
    with transaction.atomic():
        record = TwoFactor.objects.select_for_update().filter(user=user).first()
        if record is not None and record.enabled:
            raise BadRequest("Two-factor authentication is already enabled")
        secret = vault.decrypt(record.pending_secret) if record and record.pending_secret else None
        if record is None or secret is None:
            raise BadRequest("No two-factor set-up in progress: start it first")
        step = _matching_step(secret, cleaned, 0)
        if step is None:
            raise FieldError("code", "is not the current code for this set-up")
        plain, hashed = _new_backup_codes()
        record.secret = record.pending_secret
        record.pending_secret = ""
        record.enabled = True
        record.enabled_on = timezone.now()
        record.last_step = step
        record.backup_codes = hashed
        record.save()
    return plain


def verify(user: User, code: str) -> str | None:
    """Check a login code: a TOTP code (each accepted once) or an unused backup code.

    Args:
        code: already cleaned by `clean_code`.

    Returns:
        "totp" or "backup-code" when it matched (a backup code is used up), else None.
    """
    with transaction.atomic():
        record = TwoFactor.objects.select_for_update().filter(user=user, enabled=True).first()
        if record is None:
            return None
        if len(code) == 6:
            secret = vault.decrypt(record.secret)
            step = _matching_step(secret, code, record.last_step) if secret else None
            if step is not None:
                record.last_step = step
                record.save(update_fields=["last_step", "modified_on"])
                return "totp"
            return None
        wanted = vault.digest("backup-code", code.upper())
        for stored in record.backup_codes:
            if hmac.compare_digest(stored, wanted):
                record.backup_codes = [c for c in record.backup_codes if c != stored]
                record.save(update_fields=["backup_codes", "modified_on"])
                return "backup-code"
    return None


def regenerate_backup_codes(user: User, code: object) -> list[str]:
    """New backup codes (the old ones stop working), confirmed with a current TOTP code.

    Raises:
        FieldError("code"): malformed or wrong code.
        BadRequest: two-factor login is off.
    """
    cleaned = clean_code(code, backup=False)
    if not is_enabled(user):
        raise BadRequest("Two-factor authentication is not enabled")
    if verify(user, cleaned) is None:
        raise FieldError("code", "is not the current code from your authenticator app")
    plain, hashed = _new_backup_codes()
    TwoFactor.objects.filter(user=user).update(backup_codes=hashed)
    return plain


def disable(user: User) -> bool:
    """Turn two-factor login off and forget the secret and codes. True if it was on."""
    record = TwoFactor.objects.filter(user=user).first()
    was_on = bool(record and record.enabled)
    TwoFactor.objects.filter(user=user).delete()
    return was_on
