"""Request and response shapes of /api/, /api/tokens and /api/users.

Request schemas check types and reject unknown properties (NPM's additionalProperties:
false); the rules on values (e-mail syntax, name length, password length, who may change
what) live in `services`, so the UI forms get the same checks.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, PlainValidator, WithJsonSchema

_TRUE = {"1", "true"}
_FALSE = {"0", "false"}


def _flag(value: Any) -> bool:
    # NPM clients send true/false, 0/1 and sometimes "0"/"1"; anything else (2, "yes",
    # null) is more likely a bug on the client side than an intent, so it is refused.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ValueError("must be a boolean (true/false or 1/0)")


Flag = Annotated[bool, PlainValidator(_flag), WithJsonSchema({"type": "boolean"})]
"""A boolean that also accepts 0/1 and "0"/"1"/"true"/"false", as NPM clients send."""

Level = Literal["hidden", "view", "manage"]


class RequestSchema(Schema):
    """Base for request bodies: unknown properties are a 400, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


# --- tokens -------------------------------------------------------------------------


class TokenRequest(RequestSchema):
    identity: str = Field(min_length=1, description="The user's e-mail address")
    secret: str = Field(min_length=1, description="The user's password")
    scope: Literal["user"] = "user"
    expiry: str | None = Field(
        default=None, description=r"Lifetime, ^\d+(y|Q|M|w|d|h|m|s|ms)$; default 1d, at most 1y"
    )


class TokenOut(Schema):
    token: str
    expires: str = Field(description="ISO 8601 UTC, e.g. 2026-11-30T10:00:00.000Z")


class ChallengeOut(Schema):
    """NPM v2.13: the password was right, now send a code to POST /tokens/2fa."""

    requires_2fa: bool
    challenge_token: str


class TwoFactorLogin(RequestSchema):
    challenge_token: str = Field(min_length=1, max_length=4096)
    code: str = Field(description="6-digit TOTP code or 8-character backup code")
    expiry: str | None = Field(default=None, description="Token lifetime, as for POST /tokens")


# --- two-factor set-up (NPM's /users/{id}/2fa) ------------------------------------------


class TwoFactorStatusOut(Schema):
    enabled: bool
    backup_codes_remaining: int


class TwoFactorSetupOut(Schema):
    secret: str
    otpauth_url: str


class TwoFactorCode(RequestSchema):
    code: str


class BackupCodesOut(Schema):
    backup_codes: list[str]


# --- named API tokens (Portway) ---------------------------------------------------------


class ApiTokenCreate(RequestSchema):
    name: str
    expiry: str = Field(description=r"Lifetime, ^\d+(y|Q|M|w|d|h|m|s|ms)$, at most 1y")
    scope: str = Field(description='"read" (GET only) or "full"')


class ApiTokenOut(Schema):
    id: int
    user_id: int
    name: str
    scope: str
    created_on: str
    expires_on: str
    last_used_on: str | None
    last_used_from: str | None


class ApiTokenCreatedOut(ApiTokenOut):
    token: str = Field(description="The token text; shown only in this response")


# --- status ---------------------------------------------------------------------------


class VersionOut(Schema):
    major: int
    minor: int
    revision: int


class StatusOut(Schema):
    status: str
    setup: bool
    version: VersionOut


class VersionCheckOut(Schema):
    """NPM's check-version object (components/check-version-object.json)."""

    current: str | None
    latest: str | None = Field(
        description="null: Portway does not ask a third-party site for new releases"
    )
    update_available: bool


# --- users ----------------------------------------------------------------------------


class PasswordAuth(RequestSchema):
    type: Literal["password"]
    secret: str


class UserCreate(RequestSchema):
    name: str
    nickname: str | None = None
    email: str
    roles: list[str] | None = None
    is_disabled: Flag | None = None
    auth: PasswordAuth | None = None


class UserUpdate(RequestSchema):
    name: str | None = None
    nickname: str | None = None
    email: str | None = None
    roles: list[str] | None = None
    is_disabled: Flag | None = None


class AuthChange(RequestSchema):
    type: Literal["password"]
    current: str | None = None
    secret: str


class PermissionsUpdate(RequestSchema):
    visibility: Literal["all", "user"] | None = None
    proxy_hosts: Level | None = None
    redirection_hosts: Level | None = None
    dead_hosts: Level | None = None
    streams: Level | None = None
    access_lists: Level | None = None
    certificates: Level | None = None


class PermissionsOut(Schema):
    id: int
    created_on: str
    modified_on: str
    user_id: int
    visibility: str
    proxy_hosts: str
    redirection_hosts: str
    dead_hosts: str
    streams: str
    access_lists: str
    certificates: str


class UserOut(Schema):
    """NPM's user object; `permissions` appears only with `?expand=permissions`."""

    id: int
    created_on: str
    modified_on: str
    is_disabled: bool
    email: str
    name: str
    nickname: str
    avatar: str
    roles: list[str]
    permissions: PermissionsOut | None = None


class LoginAsOut(Schema):
    token: str
    expires: str
    user: UserOut
