"""Bearer tokens for the API.

Two kinds are accepted in `Authorization: Bearer`:

- login tokens from `POST /api/tokens` (NPM's): `django.core.signing` data {uid, gen,
  exp, scope}, signed with the installation key. They stop working when they expire,
  when the user is disabled or deleted, or when the user's token generation is bumped
  (password change, disable).
- named API tokens (`pwt_<key>_<secret>`, `ApiToken` rows) that a user creates for
  scripts: scope `read` (GET only) or `full`, an expiry, last use recorded, revoked by
  deleting the row. Only the SHA-256 of the secret is stored.

Expiry syntax follows NPM: `^\\d+(y|Q|M|w|d|h|m|s|ms)$`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from portway.accounts.models import ApiToken, User
from portway.core.errors import FieldError, NotAuthenticated, PermissionDenied

SALT = "portway.api-token"
CHALLENGE_SALT = "portway.2fa-challenge"
CHALLENGE_SECONDS = 300  # NPM's challenge tokens live 5 minutes too
API_TOKEN_PREFIX = "pwt_"
API_TOKEN_NAME_MAX = 100
API_TOKEN_SCOPES = ("read", "full")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Writing last_used_on on every request would turn every GET into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_API_TOKEN = re.compile(r"^pwt_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$")
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
# ASCII digits, few enough that `* 0.001` (ms) stays a float; the 1-year cap does the rest
_EXPIRY = re.compile(r"^([0-9]{1,15})(ms|y|Q|M|w|d|h|m|s)$")


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


def authenticate(token: str, method: str = "GET", address: str | None = None) -> User:
    """The active user a bearer token (either kind) belongs to; see `authenticate_scoped`."""
    return authenticate_scoped(token, method, address)[0]


def authenticate_scoped(
    token: str, method: str = "GET", address: str | None = None
) -> tuple[User, str]:
    """The active user a bearer token (either kind) belongs to, and the token's scope.

    Returns:
        (user, scope): scope is "user" for login tokens, "read" or "full" for API tokens.

    Args:
        method: the request's HTTP method; read-only API tokens allow only GET/HEAD.
        address: the client's address, recorded as an API token's last use.

    Raises:
        NotAuthenticated: bad signature, expired, user gone or disabled, or revoked.
        PermissionDenied: a read-only API token used for a change.
    """
    if token.startswith(API_TOKEN_PREFIX):
        return _authenticate_api_token(token, method, address)
    return _authenticate_login_token(token), "user"


def _authenticate_login_token(token: str) -> User:
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


# --- 2FA login challenge --------------------------------------------------------------


def issue_challenge(user: User) -> str:
    """A short-lived token proving the password was right, to exchange with a 2FA code."""
    return signing.dumps(
        {"uid": user.pk, "gen": user.token_generation, "exp": int(time.time()) + CHALLENGE_SECONDS},
        salt=CHALLENGE_SALT,
        compress=True,
    )


def read_challenge(challenge: str) -> User:
    """The user a challenge token was issued to.

    Raises:
        NotAuthenticated: tampered, expired, or the user is gone, disabled or changed.
    """
    try:
        data = signing.loads(challenge, salt=CHALLENGE_SALT)
    except signing.BadSignature as exc:
        raise NotAuthenticated("Invalid or expired challenge token") from exc
    if not isinstance(data, dict) or data.get("exp", 0) < time.time():
        raise NotAuthenticated("Invalid or expired challenge token")
    user = User.objects.filter(pk=data.get("uid")).first()
    if user is None or user.is_disabled or user.token_generation != data.get("gen"):
        raise NotAuthenticated("Invalid or expired challenge token")
    return user


# --- named API tokens -----------------------------------------------------------------


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def clean_token_name(value: object) -> str:
    """A token name: 1-100 printable characters, trimmed.

    Raises:
        FieldError("name"): not a string, blank, too long or with control characters.
    """
    if not isinstance(value, str):
        raise FieldError("name", "must be a string")
    name = value.strip()
    if not name:
        raise FieldError("name", "must not be blank")
    if len(name) > API_TOKEN_NAME_MAX:
        raise FieldError("name", f"must be at most {API_TOKEN_NAME_MAX} characters long")
    if not name.isprintable():
        raise FieldError("name", "must not contain control characters")
    return name


def clean_scope(value: object) -> str:
    """ "read" or "full". Raises FieldError("scope") otherwise."""
    if value not in API_TOKEN_SCOPES:
        raise FieldError("scope", 'must be "read" (read-only) or "full"')
    return value  # type: ignore[return-value]


def create_api_token(
    user: User, name: object, expiry: object, scope: object
) -> tuple[ApiToken, str]:
    """A new named token for `user`.

    Args:
        expiry: NPM expiry text, e.g. "90d" or "1y" (at most one year).
        scope: "read" or "full".

    Returns:
        (row, token text); the text is never stored and cannot be shown again.

    Raises:
        FieldError("name" | "expiry" | "scope"): bad value, or the name already used.
    """
    cleaned_name = clean_token_name(name)
    if not isinstance(expiry, str) or not expiry:
        raise FieldError("expiry", r"is required, e.g. 90d (^\d+(y|Q|M|w|d|h|m|s|ms)$, at most 1y)")
    lifetime = parse_expiry(expiry)
    cleaned_scope = clean_scope(scope)
    key = secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")[:16]
    secret = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            row = ApiToken.objects.create(
                user=user,
                name=cleaned_name,
                key=key,
                secret_hash=_hash_secret(secret),
                scope=cleaned_scope,
                expires_on=timezone.now() + timedelta(seconds=lifetime),
            )
    except IntegrityError as exc:
        raise FieldError("name", "is already used by another of your tokens") from exc
    return row, f"{API_TOKEN_PREFIX}{key}_{secret}"


def _authenticate_api_token(token: str, method: str, address: str | None) -> tuple[User, str]:
    match = _API_TOKEN.match(token)
    row = (
        ApiToken.objects.select_related("user").filter(key=match.group(1)).first()
        if match
        else None
    )
    if row is None or not hmac.compare_digest(row.secret_hash, _hash_secret(match.group(2))):
        raise NotAuthenticated("Invalid or revoked API token")
    now = timezone.now()
    if row.expires_on <= now:
        raise NotAuthenticated("API token has expired")
    if row.user.is_disabled:
        raise NotAuthenticated("User is disabled or no longer exists")
    if row.scope != "full" and method.upper() not in READ_METHODS:
        raise PermissionDenied("This API token is read-only")
    if row.last_used_on is None or row.last_used_on < now - LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_on=now, last_used_from=address)
    return row.user, row.scope
