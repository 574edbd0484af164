"""Keys derived from the installation's signing key, for secrets Portway must keep.

A TOTP secret has to be read back to check codes, so it cannot be hashed; it is
encrypted (Fernet: AES-128-CBC with HMAC-SHA256) under a key derived from
`settings.SECRET_KEY`, which lives in the 0600 `secret_key` file, never in the database.
Backup codes are only compared, so they are stored as HMAC-SHA256 digests under another
derived key: a stolen database neither shows them nor lets them be guessed offline.
Changing PORTWAY_SECRET_KEY therefore invalidates two-factor set-ups; `portway reset-2fa`
clears one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _derived(purpose: str) -> bytes:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"portway.{purpose}".encode(), hashlib.sha256
    ).digest()


def encrypt(text: str) -> str:
    """`text` encrypted for storage (URL-safe base64 text)."""
    fernet = Fernet(base64.urlsafe_b64encode(_derived("totp-secret")))
    return fernet.encrypt(text.encode()).decode("ascii")


def decrypt(token: str) -> str | None:
    """The text `encrypt` was given, or None when it was encrypted under another key."""
    fernet = Fernet(base64.urlsafe_b64encode(_derived("totp-secret")))
    try:
        return fernet.decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        return None


def digest(purpose: str, value: str) -> str:
    """Hex HMAC-SHA256 of `value` under a key derived for `purpose`."""
    return hmac.new(_derived(purpose), value.encode(), hashlib.sha256).hexdigest()
