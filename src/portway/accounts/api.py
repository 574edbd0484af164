"""API: status, tokens, users (NPM's /api/, /api/tokens, /api/users).

Views only translate between HTTP and `services`; every rule lives there.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from portway import __version__
from portway.accounts import credentials, services
from portway.accounts.models import User
from portway.accounts.schemas import (
    ApiTokenCreate,
    ApiTokenCreatedOut,
    ApiTokenOut,
    AuthChange,
    BackupCodesOut,
    ChallengeOut,
    LoginAsOut,
    PermissionsUpdate,
    StatusOut,
    TokenOut,
    TokenRequest,
    TwoFactorCode,
    TwoFactorLogin,
    TwoFactorSetupOut,
    TwoFactorStatusOut,
    UserCreate,
    UserOut,
    UserUpdate,
    VersionCheckOut,
)
from portway.core.api import BearerAuth
from portway.core.audit import client_address
from portway.core.errors import PermissionDenied
from portway.core.wire import iso

router = Router(tags=["accounts"])


class FirstRunAuth:
    """Admits a request without credentials while no user exists (NPM's first run).

    Listed after BearerAuth on POST /api/users only: a request that does carry a token
    is judged by the token; one without a token passes here only before setup.
    `services.create_user` then takes the one first-run claim (a unique index), so
    simultaneous requests cannot create two.
    """

    FIRST_RUN = "first-run"

    def __call__(self, request: HttpRequest) -> str | None:
        return None if User.objects.exists() else self.FIRST_RUN


def _actor(request: HttpRequest) -> User | None:
    """The authenticated user, or None on the first-run path."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, User) else None


def _user_out(user: User, expand: str | None) -> dict[str, Any]:
    return services.serialize_user(user, services.parse_expand(expand, services.USER_EXPANDS))


# --- status and tokens -----------------------------------------------------------------


@router.get("/", auth=None, response=StatusOut, summary="Health and setup status")
def status(request: HttpRequest) -> dict[str, Any]:
    """`setup` is true once an admin exists; before that POST /users creates one."""
    return {"status": "OK", "setup": services.is_setup(), "version": services.version()}


@router.get(
    "/version/check",
    auth=None,
    response=VersionCheckOut,
    summary="The running version; never a new one (Portway asks no third-party site)",
)
def version_check(request: HttpRequest) -> dict[str, Any]:
    """NPM's update check. NPM asks GitHub for its latest release; Portway makes no call
    to a third-party site from a request, so `latest` is null and no update is offered."""
    return {"current": f"v{__version__}", "latest": None, "update_available": False}


@router.post("/tokens", auth=None, response=TokenOut | ChallengeOut, summary="Log in")
def create_token(request: HttpRequest, payload: TokenRequest) -> dict[str, Any]:
    """Exchange e-mail and password for a bearer token (401 on a bad login).

    With two-factor login on, the answer is `{"requires_2fa": true, "challenge_token"}`
    instead; send it with a code to POST /tokens/2fa. Repeated failures answer 429 with
    Retry-After (per address, and per account at an address).
    """
    result = services.login(
        payload.identity,
        payload.secret,
        scope=payload.scope,
        expiry=payload.expiry,
        address=client_address(request),
    )
    if result.challenge_token is not None:
        return {"requires_2fa": True, "challenge_token": result.challenge_token}
    return {"token": result.token, "expires": iso(result.expires)}


@router.post("/tokens/2fa", auth=None, response=TokenOut, summary="Log in: 2FA code")
def create_token_2fa(request: HttpRequest, payload: TwoFactorLogin) -> dict[str, str]:
    """Exchange a challenge token and a TOTP or backup code for a bearer token."""
    result = services.login_second_factor(
        payload.challenge_token,
        payload.code,
        expiry=payload.expiry,
        address=client_address(request),
    )
    return {"token": result.token, "expires": iso(result.expires)}


@router.get("/tokens", response=TokenOut, summary="Refresh a token")
def refresh_token(request: HttpRequest, expiry: str | None = None) -> dict[str, str]:
    r"""A new token for the caller; `expiry` matches ^\d+(y|Q|M|w|d|h|m|s|ms)$, at most 1y."""
    if getattr(request, "token_scope", None) == "read":
        raise PermissionDenied("A read-only API token cannot be exchanged for a login token")
    token, expires = services.refresh_token(request.auth, expiry)
    return {"token": token, "expires": iso(expires)}


# --- users -------------------------------------------------------------------------------


@router.get("/users", response=list[UserOut], exclude_none=True, summary="List users")
def list_users(
    request: HttpRequest, query: str | None = None, expand: str | None = None
) -> list[dict[str, Any]]:
    """Admin only. `query` filters by name or e-mail substring; ordered by name."""
    names = services.parse_expand(expand, services.USER_EXPANDS)
    return [services.serialize_user(u, names) for u in services.list_users(request.auth, query)]


@router.post(
    "/users",
    auth=[BearerAuth(), FirstRunAuth()],
    response={201: UserOut},
    exclude_none=True,
    summary="Create a user",
)
def create_user(request: HttpRequest, payload: UserCreate, expand: str | None = None) -> Status:
    """Admin only, except while no user exists: then the first user, forced to admin."""
    fields = payload.model_dump(exclude_unset=True, exclude={"auth"})
    user = services.create_user(
        _actor(request), **fields, password=payload.auth.secret if payload.auth else None
    )
    return Status(201, _user_out(user, expand))


@router.get("/users/{user_id}", response=UserOut, exclude_none=True, summary="Get a user")
def get_user(request: HttpRequest, user_id: str, expand: str | None = None) -> dict[str, Any]:
    """`user_id` is an id or `me`; non-admins may only read themselves."""
    return _user_out(services.resolve_user(request.auth, user_id), expand)


@router.put("/users/{user_id}", response=UserOut, exclude_none=True, summary="Update a user")
def update_user(
    request: HttpRequest, user_id: str, payload: UserUpdate, expand: str | None = None
) -> dict[str, Any]:
    """Change name, nickname, email, roles or is_disabled (any subset, at least one)."""
    target = services.resolve_user(request.auth, user_id)
    user = services.update_user(request.auth, target, payload.model_dump(exclude_unset=True))
    return _user_out(user, expand)


@router.delete("/users/{user_id}", response=bool, summary="Delete a user")
def delete_user(request: HttpRequest, user_id: str) -> bool:
    """Admin only; the user's hosts and certificates pass to the caller."""
    services.delete_user(request.auth, services.resolve_user(request.auth, user_id))
    return True


@router.put("/users/{user_id}/auth", response=bool, summary="Change a password")
def change_password(request: HttpRequest, user_id: str, payload: AuthChange) -> bool:
    """`current` is required for one's own password; the user's old tokens stop working."""
    target = services.resolve_user(request.auth, user_id)
    services.change_password(request.auth, target, payload.secret, payload.current)
    return True


@router.put("/users/{user_id}/permissions", response=bool, summary="Set permissions")
def set_permissions(request: HttpRequest, user_id: str, payload: PermissionsUpdate) -> bool:
    """Admin only: visibility and per-section levels."""
    target = services.resolve_user(request.auth, user_id)
    services.set_permissions(request.auth, target, payload.model_dump(exclude_unset=True))
    return True


@router.post("/users/{user_id}/login", response=LoginAsOut, exclude_none=True, summary="Act as")
def login_as(request: HttpRequest, user_id: str) -> dict[str, Any]:
    """Admin only: a token for another user, as NPM's "sign in as"."""
    target = services.resolve_user(request.auth, user_id)
    token, expires = services.login_as(request.auth, target)
    return {"token": token, "expires": iso(expires), "user": services.serialize_user(target)}


# --- two-factor login (NPM v2.13's /users/{id}/2fa) -------------------------------------


@router.get("/users/{user_id}/2fa", response=TwoFactorStatusOut, summary="2FA status")
def two_factor_status(request: HttpRequest, user_id: str) -> dict[str, Any]:
    """`{"enabled", "backup_codes_remaining"}`; yourself, or anyone for an admin."""
    target = services.resolve_user(request.auth, user_id)
    return credentials.two_factor_status(request.auth, target)


@router.post("/users/{user_id}/2fa", response=TwoFactorSetupOut, summary="Start 2FA set-up")
def two_factor_start(request: HttpRequest, user_id: str) -> dict[str, str]:
    """Your own only: a pending secret and its otpauth:// URL (active after /enable)."""
    target = services.resolve_user(request.auth, user_id)
    return credentials.start_two_factor(request.auth, target)


@router.post("/users/{user_id}/2fa/enable", response=BackupCodesOut, summary="Enable 2FA")
def two_factor_enable(request: HttpRequest, user_id: str, payload: TwoFactorCode) -> dict:
    """Confirm the pending secret with a current code; answers the backup codes, once."""
    target = services.resolve_user(request.auth, user_id)
    return {"backup_codes": credentials.enable_two_factor(request.auth, target, payload.code)}


@router.post(
    "/users/{user_id}/2fa/backup-codes", response=BackupCodesOut, summary="New backup codes"
)
def two_factor_backup_codes(request: HttpRequest, user_id: str, payload: TwoFactorCode) -> dict:
    """A fresh set of backup codes (the old ones stop working), confirmed with a code."""
    target = services.resolve_user(request.auth, user_id)
    codes = credentials.regenerate_backup_codes(request.auth, target, payload.code)
    return {"backup_codes": codes}


@router.delete("/users/{user_id}/2fa", response=bool, summary="Disable or reset 2FA")
def two_factor_disable(request: HttpRequest, user_id: str, code: str | None = None) -> bool:
    """Your own needs `?code=` (a current or backup code); an admin resets others' without."""
    target = services.resolve_user(request.auth, user_id)
    credentials.disable_two_factor(request.auth, target, code)
    return True


# --- named API tokens (Portway) ---------------------------------------------------------


@router.get("/users/{user_id}/api-tokens", response=list[ApiTokenOut], summary="API tokens")
def list_api_tokens(request: HttpRequest, user_id: str) -> list[dict[str, Any]]:
    """Your named API tokens (an admin may list anyone's); never their secrets."""
    target = services.resolve_user(request.auth, user_id)
    return [credentials.serialize_token(t) for t in credentials.list_tokens(request.auth, target)]


@router.post(
    "/users/{user_id}/api-tokens",
    response={201: ApiTokenCreatedOut},
    summary="Create an API token",
)
def create_api_token(request: HttpRequest, user_id: str, payload: ApiTokenCreate) -> Status:
    """Your own only. The answer's `token` is the only time the secret is shown."""
    target = services.resolve_user(request.auth, user_id)
    row, text = credentials.create_token(
        request.auth, target, payload.name, payload.expiry, payload.scope
    )
    return Status(201, {**credentials.serialize_token(row), "token": text})


@router.delete(
    "/users/{user_id}/api-tokens/{token_id}", response=bool, summary="Revoke an API token"
)
def revoke_api_token(request: HttpRequest, user_id: str, token_id: str) -> bool:
    """Revoke at once: the next request with that token gets 401."""
    target = services.resolve_user(request.auth, user_id)
    credentials.revoke_token(request.auth, target, token_id)
    return True
