"""Bearer tokens for the API: signed with the installation key, expiry enforced.

A token is `django.core.signing` data {uid, gen, exp, scope}. It stops working when it
expires, when the user is disabled or deleted, or when the user's token generation is
bumped (password change). Expiry syntax follows NPM: `^\\d+(y|Q|M|w|d|h|m|s|ms)$`.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from django.core import signing

from portway.accounts.models import User
from portway.core.errors import FieldError, NotAuthenticated

SALT = "portway.api-token"
DEFAULT_EXPIRY = "1d"
MAX_EXPIRY_SECONDS = 366 * 86400  # a leap year: "1y" must fit
_UNITS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "M": 30 * 86400,
    "Q": 91 * 86400,
    "y": 365 * 86400,
}
_EXPIRY = re.compile(r"^(\d+)(ms|y|Q|M|w|d|h|m|s)$")


def parse_expiry(text: str | None) -> int:
    """Seconds for an NPM expiry string such as "1d" or "30m".

    Raises:
        FieldError: the text does not match the pattern, or exceeds the 1-year cap.
    """
    text = DEFAULT_EXPIRY if text in (None, "") else text
    match = _EXPIRY.match(text)  # type: ignore[arg-type]
    if not match:
        raise FieldError("expiry", r"must match pattern ^\d+(y|Q|M|w|d|h|m|s|ms)$, e.g. 1d")
    seconds = int(int(match.group(1)) * _UNITS[match.group(2)])
    if seconds < 1:
        raise FieldError("expiry", "must be at least one second")
    if seconds > MAX_EXPIRY_SECONDS:
        raise FieldError("expiry", "must be at most 1y (Portway caps token lifetime at one year)")
    return seconds


def issue(user: User, expiry: str | None = None, scope: str = "user") -> tuple[str, datetime]:
    """A new token for `user` and its expiry time (UTC)."""
    lifetime = parse_expiry(expiry)
    expires_at = int(time.time()) + lifetime
    token = signing.dumps(
        {"uid": user.pk, "gen": user.token_generation, "exp": expires_at, "scope": scope},
        salt=SALT,
        compress=True,
    )
    return token, datetime.fromtimestamp(expires_at, tz=UTC)


def authenticate(token: str) -> User:
    """The active user a token belongs to.

    Raises:
        NotAuthenticated: bad signature, expired, user gone or disabled, or revoked.
    """
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise NotAuthenticated("Invalid token") from exc
    if not isinstance(data, dict) or data.get("exp", 0) < time.time():
        raise NotAuthenticated("Token has expired")
    user = User.objects.filter(pk=data.get("uid")).first()
    if user is None or user.is_disabled:
        raise NotAuthenticated("User is disabled or no longer exists")
    if user.token_generation != data.get("gen"):
        raise NotAuthenticated("Token has been revoked")
    return user
