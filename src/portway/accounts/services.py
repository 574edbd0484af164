"""Users, logins and tokens: the rules behind /api/, /api/tokens, /api/users and the UI.

Every function takes plain Python values, validates them itself (the API's pydantic
schemas only check types) and raises `portway.core.errors` exceptions, so the API and the
HTML forms give the same answers. Every change to a user, and every login, writes an
AuditLogEntry in the same transaction as the change.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q, QuerySet
from django.db.models.functions import Lower

from portway import __version__
from portway.accounts import signin, tokens, totp
from portway.accounts.models import ApiToken, Permission, SetupClaim, User
from portway.accounts.permissions import (
    LEVELS,
    NEW_USER_PERMISSIONS,
    SECTIONS,
    VISIBILITIES,
    permission_for,
)
from portway.conf import ConfigError
from portway.core.audit import changes as audit_changes
from portway.core.errors import (
    BadRequest,
    Conflict,
    FieldError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from portway.core.params import is_id
from portway.core.wire import iso
from portway.nginx.models import AuditLogEntry

log = logging.getLogger("portway.accounts")

NAME_MAX = 100
EMAIL_MAX = 254
PASSWORD_MIN = 8
PASSWORD_MAX = 64
INITIAL_ADMIN_NAME = "Administrator"
USER_FIELDS = ("name", "nickname", "email", "roles", "is_disabled")
PERMISSION_FIELDS = ("visibility", *SECTIONS)
USER_EXPANDS = frozenset({"permissions"})
_COMMON_PASSWORDS = CommonPasswordValidator()
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --- status -----------------------------------------------------------------------------


def is_setup() -> bool:
    """True once an admin account exists (NPM's `setup` flag on GET /api/)."""
    return User.objects.filter(is_admin=True).exists()


def version() -> dict[str, int]:
    """portway.__version__ as NPM's {"major", "minor", "revision"} (non-numeric parts are 0)."""
    parts = [int(m.group()) if (m := re.match(r"\d+", p)) else 0 for p in __version__.split(".")]
    parts += [0, 0, 0]
    return {"major": parts[0], "minor": parts[1], "revision": parts[2]}


# --- validation -------------------------------------------------------------------------


def _has_control(text: str) -> bool:
    # Control, line/paragraph separator and bidi override characters make names render
    # misleadingly in the UI and in logs; nothing legitimate needs them in a name.
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI_CONTROLS for c in text)


def clean_name(value: Any, field: str = "name") -> str:
    """A display name: a non-blank string of at most 100 characters, surrounding space trimmed.

    Raises:
        FieldError(field): not a string, blank, too long, or holding control characters.
    """
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    value = value.strip()
    if not value:
        raise FieldError(field, "must not be blank")
    if len(value) > NAME_MAX:
        raise FieldError(field, f"must be at most {NAME_MAX} characters long")
    if _has_control(value):
        raise FieldError(field, "must not contain control characters")
    return value


def clean_nickname(value: Any) -> str:
    """Like `clean_name`, but optional: None and blank give ""."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    return clean_name(value, "nickname")


def clean_email(value: Any, field: str = "email") -> str:
    """An e-mail address, trimmed and lowercased (uniqueness is case-insensitive).

    Raises:
        FieldError(field): not a string, too long, or not an address by Django's validator.
    """
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    value = value.strip().lower()
    if not value:
        raise FieldError(field, "must not be blank")
    if len(value) > EMAIL_MAX:
        raise FieldError(field, f"must be at most {EMAIL_MAX} characters long")
    try:
        validate_email(value)
    except ValidationError as exc:
        raise FieldError(field, "must be a valid e-mail address") from exc
    return value


def clean_password(value: Any, field: str = "auth/secret") -> str:
    """A new password: a string of 8 to 64 characters (kept exactly as given), not only
    digits and not on Django's list of 20,000 common passwords.

    Raises:
        FieldError(field): not a string, outside 8-64 characters, or too easy to guess.
    """
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    if len(value) < PASSWORD_MIN:
        raise FieldError(field, f"must be at least {PASSWORD_MIN} characters long")
    if len(value) > PASSWORD_MAX:
        raise FieldError(field, f"must be at most {PASSWORD_MAX} characters long")
    if value.isdigit():
        raise FieldError(field, "must not be only digits")
    try:
        _COMMON_PASSWORDS.validate(value)
    except ValidationError as exc:
        raise FieldError(field, "is too common: choose one that is harder to guess") from exc
    return value


def clean_roles(value: Any) -> bool:
    """NPM's roles list (`["admin"]` or `[]`) as an is-admin flag.

    Raises:
        FieldError("roles" or "roles/<i>"): not a list, or an entry other than "admin".
    """
    if not isinstance(value, list):
        raise FieldError("roles", 'must be a list: ["admin"] or []')
    for index, role in enumerate(value):
        if role != "admin":
            raise FieldError(f"roles/{index}", 'must be "admin" (the only role)')
    return bool(value)


def _clean_flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise FieldError(field, "must be a boolean")
    return value


def _check_email_free(email: str, exclude: User | None = None) -> None:
    others = User.objects.filter(email__iexact=email)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    if others.exists():
        raise FieldError("email", "is already used by another user")


def parse_expand(text: str | None, allowed: Iterable[str]) -> set[str]:
    """The names in a `?expand=a,b` parameter.

    Raises:
        FieldError("expand"): a name not in `allowed`.
    """
    allowed = set(allowed)
    names = {part.strip() for part in (text or "").split(",") if part.strip()}
    unknown = names - allowed
    if unknown:
        choices = ", ".join(sorted(allowed)) or "nothing"
        raise FieldError("expand", f"may only name: {choices} (got {', '.join(sorted(unknown))})")
    return names


# --- serialisation ----------------------------------------------------------------------


def serialize_permission(permission: Permission) -> dict[str, Any]:
    """NPM's permission object: id, created_on, modified_on, user_id, visibility, sections."""
    data: dict[str, Any] = {
        "id": permission.pk,
        "created_on": iso(permission.created_on),
        "modified_on": iso(permission.modified_on),
        "user_id": permission.user_id,
    }
    for field in PERMISSION_FIELDS:
        data[field] = getattr(permission, field)
    return data


def serialize_user(user: User, expand: Iterable[str] = ()) -> dict[str, Any]:
    """NPM's user object, exactly: id, created_on, modified_on, is_disabled, email, name,
    nickname, avatar, roles; plus `permissions` when "permissions" is in `expand`.

    Other apps use this for an expanded `owner` (strict clients reject extra keys).
    """
    data: dict[str, Any] = {
        "id": user.pk,
        "created_on": iso(user.created_on),
        "modified_on": iso(user.modified_on),
        "is_disabled": bool(user.is_disabled),
        "email": user.email,
        "name": user.name,
        "nickname": user.nickname,
        "avatar": user.avatar,
        "roles": user.roles,
    }
    if "permissions" in expand:
        data["permissions"] = serialize_permission(permission_for(user))
    return data


def _audit(actor: User | None, action: str, target: User, meta: dict[str, Any]) -> None:
    AuditLogEntry.objects.create(
        user=actor, object_type="user", object_id=target.pk, action=action, meta=meta
    )


# --- tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    """What `POST /api/tokens` answers: a token, or a two-factor challenge."""

    user: User
    token: str | None = None
    expires: datetime | None = None
    challenge_token: str | None = None


def login(
    identity: str,
    secret: str,
    *,
    scope: str = "user",
    expiry: str | None = None,
    address: str | None = None,
) -> LoginResult:
    """Check an e-mail/password pair and issue an API token, or a 2FA challenge.

    Args:
        address: the client's IP address (brute-force throttle, audit log).

    Returns:
        A LoginResult with `token` and `expires`, or, when the account has two-factor
        login, with `challenge_token` (valid 5 minutes) for `login_second_factor`.

    Raises:
        FieldError("expiry"): bad expiry text or over the 1-year cap (checked first).
        TooManyRequests: too many failed attempts from this address or for this account.
        NotAuthenticated: unknown e-mail, wrong password, or a disabled account.
    """
    tokens.parse_expiry(expiry)
    user = signin.check_password(identity, secret, address=address, via="api")
    if totp.is_enabled(user):
        return LoginResult(user, challenge_token=tokens.issue_challenge(user))
    token, expires = tokens.issue(user, expiry, scope)
    signin.audit_success(user, "api", scope=scope)
    return LoginResult(user, token=token, expires=expires)


def login_second_factor(
    challenge_token: Any, code: Any, *, expiry: str | None = None, address: str | None = None
) -> LoginResult:
    """Exchange a 2FA challenge and a TOTP or backup code for a token (POST /api/tokens/2fa).

    Raises:
        NotAuthenticated: bad or expired challenge, or a wrong code.
        FieldError("code"): a malformed code.
        TooManyRequests: too many wrong codes.
    """
    tokens.parse_expiry(expiry)
    if not isinstance(challenge_token, str):
        raise NotAuthenticated("Invalid or expired challenge token")
    user = tokens.read_challenge(challenge_token)
    method = signin.check_second_factor(user, code, address=address, via="api")
    token, expires = tokens.issue(user, expiry)
    signin.audit_success(user, "api", second_factor=method)
    return LoginResult(user, token=token, expires=expires)


def refresh_token(user: User, expiry: str | None = None) -> tuple[str, datetime]:
    """A fresh token for an already authenticated user (GET /api/tokens).

    Raises:
        FieldError("expiry"): bad expiry text or over the 1-year cap.
    """
    return tokens.issue(user, expiry)


def login_as(actor: User, target: User) -> tuple[str, datetime]:
    """An admin's token acting as `target` (POST /api/users/{id}/login).

    Raises:
        PermissionDenied: `actor` is not an admin.
        BadRequest: `target` is disabled.
    """
    check_login_as(actor, target)
    token, expires = tokens.issue(target)
    _audit(actor, "login", target, {"email": target.email, "name": target.name, "as_user": True})
    return token, expires


def check_login_as(actor: User, target: User) -> None:
    """Raise unless `actor` may act as `target` (the UI's "log in as" uses this too).

    Raises:
        PermissionDenied: `actor` is not an admin.
        BadRequest: `target` is disabled.
    """
    _require_admin(actor)
    if target.is_disabled:
        raise BadRequest("This user is disabled and cannot be logged in as")


def audit_login_as(actor: User, target: User) -> None:
    """Record that `actor` signed in to the UI as `target`."""
    _audit(
        actor,
        "login",
        target,
        {"email": target.email, "name": target.name, "as_user": True, "via": "ui"},
    )


# --- users: reading ---------------------------------------------------------------------


def _require_admin(actor: User) -> None:
    if not actor.is_admin:
        raise PermissionDenied("Only an administrator may do this")


def resolve_user(actor: User, ref: str | int) -> User:
    """The user named by a path segment: a numeric id or "me".

    Non-admins may only reach themselves; they get 403 for any other id, existing or not,
    so ids cannot be probed.

    Raises:
        PermissionDenied: a non-admin asks for someone else.
        NotFound: no such user (or `ref` is not an id).
    """
    if ref == "me" or (not isinstance(ref, str) and ref == actor.pk):
        return actor
    text = str(ref)
    if not is_id(text):
        if not actor.is_admin:
            raise PermissionDenied("You may only see and change your own account")
        raise NotFound(f"User {text!r} not found")
    pk = int(text)
    if pk == actor.pk:
        return actor
    if not actor.is_admin:
        raise PermissionDenied("You may only see and change your own account")
    user = User.objects.filter(pk=pk).first()
    if user is None:
        raise NotFound(f"User {pk} not found")
    return user


def list_users(actor: User, query: str | None = None) -> QuerySet[User]:
    """All users, by name (case-insensitively, the same on every database), then id.

    Args:
        query: keep users whose name or e-mail contains this text (any case).

    Raises:
        PermissionDenied: `actor` is not an admin.
    """
    _require_admin(actor)
    users = User.objects.select_related("permission")
    if query:
        users = users.filter(Q(name__icontains=query) | Q(email__icontains=query))
    return users.order_by(Lower("name"), "id")


# --- users: creating --------------------------------------------------------------------


def _insert_user(
    *,
    name: str,
    email: str,
    nickname: str,
    is_admin: bool,
    is_disabled: bool,
    password: str | None,
) -> User:
    """Save a validated user and its permission row; maps a lost e-mail race to 400."""
    _check_email_free(email)
    try:
        # Savepoint: a unique violation must not poison the caller's transaction (PostgreSQL).
        with transaction.atomic():
            user = User.objects.create_user(
                email,
                password,
                is_admin=is_admin,
                is_disabled=is_disabled,
                name=name,
                nickname=nickname,
            )
    except IntegrityError as exc:
        raise FieldError("email", "is already used by another user") from exc
    # Least privilege: a new non-admin sees nothing until an admin grants sections.
    defaults = {"visibility": "all"} if is_admin else NEW_USER_PERMISSIONS
    user.permission = Permission.objects.create(user=user, **defaults)
    return user


def _claim_first_run() -> None:
    """Take the installation's one first-run claim, inside the caller's transaction.

    The unique index on SetupClaim.name decides between simultaneous first-run requests:
    the first insert wins; the others wait for its transaction and then fail, so exactly
    one first administrator is created on every database. If the winner's transaction
    rolls back, its claim goes with it and setup stays open.

    Raises:
        NotAuthenticated: the claim is taken, or a user exists already (e.g. created by
            `portway createadmin`, which does not go through the first-run path).
    """
    try:
        # Savepoint: a unique violation must not poison the caller's transaction (PostgreSQL).
        with transaction.atomic():
            SetupClaim.objects.create(name=SetupClaim.FIRST_ADMIN)
    except IntegrityError as exc:
        raise NotAuthenticated("Authentication required: send an administrator's token") from exc
    if User.objects.exists():
        raise NotAuthenticated("Authentication required: send an administrator's token")


class _NotGiven:
    """Marks an optional argument the client left out, as distinct from an explicit null."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


def create_user(
    actor: User | None,
    *,
    name: Any,
    email: Any,
    nickname: Any = None,
    roles: Any = NOT_GIVEN,
    is_disabled: Any = NOT_GIVEN,
    password: Any = None,
) -> User:
    """Create a user (POST /api/users).

    With `actor` None this is the first-run path: allowed only while no user exists,
    the user is forced to an enabled admin and `password` is required. Otherwise `actor`
    must be an admin; `password` None leaves the account without a usable password.

    Args:
        nickname: optional text; None means "".
        roles: ["admin"] or []; left out means [] (an explicit None is a FieldError).
        is_disabled: bool; left out means False (an explicit None is a FieldError).
        password: the new password, or None for an account that cannot log in yet.

    Raises:
        NotAuthenticated: `actor` is None but users already exist.
        PermissionDenied: `actor` is not an admin.
        FieldError: a bad value, or the e-mail already in use.
    """
    if actor is not None:
        _require_admin(actor)
    elif User.objects.exists():
        # Answer "who are you" before judging the fields of a request nobody may make.
        raise NotAuthenticated("Authentication required: send an administrator's token")
    cleaned_name = clean_name(name)
    cleaned_nickname = clean_nickname(nickname)
    cleaned_email = clean_email(email)
    is_admin = clean_roles(roles) if roles is not NOT_GIVEN else False
    disabled = _clean_flag(is_disabled, "is_disabled") if is_disabled is not NOT_GIVEN else False
    if actor is None and password is None:
        raise FieldError("auth/secret", "is required to create the first user")
    cleaned_password = clean_password(password) if password is not None else None
    with transaction.atomic():
        if actor is None:
            _claim_first_run()
            is_admin, disabled = True, False
        user = _insert_user(
            name=cleaned_name,
            email=cleaned_email,
            nickname=cleaned_nickname,
            is_admin=is_admin,
            is_disabled=disabled,
            password=cleaned_password,
        )
        _audit(actor or user, "created", user, serialize_user(user))
    log.info("user %s created by %s", user.email, actor.email if actor else "first run")
    return user


def create_first_admin(email: Any, password: Any, name: Any = INITIAL_ADMIN_NAME) -> User:
    """Create the first account, an admin, for the UI's setup page.

    Raises:
        Conflict: a user already exists (setup is over).
        FieldError: bad name, e-mail or password ("auth/secret").
    """
    try:
        return create_user(None, name=name, email=email, password=password, roles=["admin"])
    except NotAuthenticated as exc:
        raise Conflict("Portway is already set up; sign in instead") from exc


def ensure_initial_admin(environ: Mapping[str, str] | None = None) -> User | None:
    """Create the first admin from INITIAL_ADMIN_EMAIL / INITIAL_ADMIN_PASSWORD.

    Called by `portway serve` at start. Does nothing (returns None) when neither variable
    is set or when any user already exists, so it is safe to run on every start and never
    resets a password that was changed later.

    Args:
        environ: variables to read; defaults to os.environ.

    Returns:
        The created admin, or None.

    Raises:
        ConfigError: only one variable is set, or a value is unusable (bad address,
            password outside 8-64 characters).
    """
    env = os.environ if environ is None else environ
    email = (env.get("INITIAL_ADMIN_EMAIL") or "").strip()
    password = env.get("INITIAL_ADMIN_PASSWORD") or ""
    if not email and not password:
        return None
    if not email or not password:
        raise ConfigError("set both INITIAL_ADMIN_EMAIL and INITIAL_ADMIN_PASSWORD, or neither")
    if User.objects.exists():
        return None
    try:
        user = create_user(
            None, name=INITIAL_ADMIN_NAME, email=email, password=password, roles=["admin"]
        )
    except NotAuthenticated:
        return None  # another process created the first user meanwhile
    except FieldError as exc:
        variable = "INITIAL_ADMIN_EMAIL" if exc.field == "email" else "INITIAL_ADMIN_PASSWORD"
        raise ConfigError(f"{variable} {exc.reason}") from exc
    log.info("created the initial admin %s from INITIAL_ADMIN_EMAIL", user.email)
    return user


# --- users: changing --------------------------------------------------------------------


def _other_enabled_admin_exists(user: User) -> bool:
    # Locks the admins it reads so two admins demoting each other cannot both succeed.
    return (
        User.objects.select_for_update()
        .filter(is_admin=True, is_disabled=False)
        .exclude(pk=user.pk)
        .exists()
    )


def update_user(actor: User, target: User, changes: Mapping[str, Any]) -> User:
    """Change some of name, nickname, email, roles, is_disabled (PUT /api/users/{id}).

    Rules: non-admins change only themselves and neither their roles nor is_disabled;
    nobody disables themselves; the last enabled admin keeps the admin role. Disabling
    a user also revokes their tokens.

    Raises:
        FieldError: unknown key or bad value; e-mail in use.
        BadRequest: `changes` is empty.
        PermissionDenied: one of the rules above.
    """
    for key in changes:
        if key not in USER_FIELDS:
            raise FieldError(key, "is not an allowed property")
    if not changes:
        raise BadRequest(f"data must contain at least one of: {', '.join(USER_FIELDS)}")
    if not actor.is_admin and actor.pk != target.pk:
        raise PermissionDenied("You may only see and change your own account")

    cleaned: dict[str, Any] = {}
    if "name" in changes:
        cleaned["name"] = clean_name(changes["name"])
    if "nickname" in changes:
        cleaned["nickname"] = clean_nickname(changes["nickname"])
    if "email" in changes:
        cleaned["email"] = clean_email(changes["email"])
    if "roles" in changes:
        cleaned["is_admin"] = clean_roles(changes["roles"])
    if "is_disabled" in changes:
        cleaned["is_disabled"] = _clean_flag(changes["is_disabled"], "is_disabled")

    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=target.pk)
        before = serialize_user(user)
        if "is_admin" in cleaned and cleaned["is_admin"] != user.is_admin:
            if not actor.is_admin:
                raise PermissionDenied("data/roles may only be changed by an administrator")
            if not cleaned["is_admin"] and not _other_enabled_admin_exists(user):
                raise PermissionDenied("data/roles: the last administrator must stay admin")
        if "is_disabled" in cleaned and cleaned["is_disabled"] != user.is_disabled:
            if user.pk == actor.pk:
                raise PermissionDenied("data/is_disabled: you cannot disable your own account")
            if not actor.is_admin:
                raise PermissionDenied("data/is_disabled may only be changed by an administrator")
            if cleaned["is_disabled"] and user.is_admin and not _other_enabled_admin_exists(user):
                raise PermissionDenied("data/is_disabled: the last administrator must stay enabled")
        if "email" in cleaned and cleaned["email"] != user.email:
            _check_email_free(cleaned["email"], exclude=user)
        if cleaned.get("is_disabled") and not user.is_disabled:
            user.token_generation += 1  # a later re-enable must not revive old tokens
        for field, value in cleaned.items():
            setattr(user, field, value)
        try:
            with transaction.atomic():
                user.save()
                if user.is_disabled:
                    # named tokens are checked by their own row, not token_generation:
                    # deleting them is what keeps a re-enable from reviving them
                    ApiToken.objects.filter(user=user).delete()
        except IntegrityError as exc:
            raise FieldError("email", "is already used by another user") from exc
        meta = serialize_user(user)
        meta["changed"] = sorted(changes)
        meta["changes"] = _user_changes(before, meta)
        action = "updated"
        if set(meta["changes"]) == {"is_disabled"}:
            action = "disabled" if user.is_disabled else "enabled"
        _audit(actor, action, user, meta)
    if actor.pk == user.pk:
        # Keep the caller's object current: views serialize it after the change.
        actor.refresh_from_db()
    return user


def _user_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    fields = ("name", "nickname", "email", "roles", "is_disabled")
    return audit_changes({f: before[f] for f in fields}, {f: after[f] for f in fields})


def change_password(actor: User, target: User, secret: Any, current: Any = None) -> None:
    """Set a new password (PUT /api/users/{id}/auth) and revoke the target's tokens.

    Args:
        secret: the new password, 8-64 characters.
        current: the present password; required when `actor` changes their own.

    Raises:
        PermissionDenied: a non-admin changing someone else's password.
        FieldError("secret"): bad new password.
        FieldError("current"): missing or wrong when changing one's own password.
    """
    if not actor.is_admin and actor.pk != target.pk:
        raise PermissionDenied("You may only change your own password")
    new = clean_password(secret, "secret")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=target.pk)
        if user.pk == actor.pk:
            if current is None or current == "":
                raise FieldError("current", "is required when changing your own password")
            if not isinstance(current, str) or not user.check_password(current):
                raise FieldError("current", "is not your current password")
        user.set_password(new)
        user.token_generation += 1  # every token issued before this stops working
        user.save()
        _audit(
            actor,
            "updated",
            user,
            {
                "email": user.email,
                "name": user.name,
                "changed": ["auth"],
                "changes": audit_changes({"password": 0}, {"password": 1}),
            },
        )
    if actor.pk == user.pk:
        actor.refresh_from_db()


def set_permissions(actor: User, target: User, changes: Mapping[str, Any]) -> Permission:
    """Change a user's visibility and section levels (PUT /api/users/{id}/permissions).

    Args:
        changes: any of visibility ("all"|"user") and the SECTIONS ("hidden"|"view"|"manage").

    Raises:
        PermissionDenied: `actor` is not an admin.
        FieldError: an unknown key or value.
    """
    _require_admin(actor)
    for key, value in changes.items():
        if key not in PERMISSION_FIELDS:
            raise FieldError(key, "is not an allowed property")
        choices = VISIBILITIES if key == "visibility" else LEVELS
        if value not in choices:
            raise FieldError(key, f"must be one of: {', '.join(choices)}")
    with transaction.atomic():
        permission = permission_for(target)
        before = {field: getattr(permission, field) for field in PERMISSION_FIELDS}
        for key, value in changes.items():
            setattr(permission, key, value)
        permission.save()
        after = {field: getattr(permission, field) for field in PERMISSION_FIELDS}
        _audit(
            actor,
            "updated",
            target,
            {
                "email": target.email,
                "name": target.name,
                "changed": ["permissions"],
                "permissions": serialize_permission(permission),
                "changes": {f"permissions/{k}": v for k, v in audit_changes(before, after).items()},
            },
        )
    return permission


def _owned_relations() -> list[tuple[type, str]]:
    """(model, field name) of every `owner` foreign key to User, in any app."""
    return [
        (rel.related_model, rel.field.name)
        for rel in User._meta.related_objects
        if rel.one_to_many and rel.field.name == "owner"
    ]


def delete_user(actor: User, target: User) -> dict[str, int]:
    """Delete a user (DELETE /api/users/{id}); what they owned passes to `actor`, as in NPM.

    Every model with an `owner` foreign key to User is reassigned, so apps added later
    are covered without changes here.

    Returns:
        {"<app_label>.<model>": number of objects reassigned} for non-zero counts.

    Raises:
        PermissionDenied: deleting oneself, or `actor` is not an admin.
        Conflict: another protected reference still points at the user.
    """
    if actor.pk == target.pk:
        raise PermissionDenied("You cannot delete your own account")
    _require_admin(actor)
    moved: dict[str, int] = {}
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=target.pk)
        if user.is_admin and not user.is_disabled and not _other_enabled_admin_exists(user):
            raise PermissionDenied("The last enabled administrator cannot be deleted")
        meta = serialize_user(user)
        for model, field in _owned_relations():
            count = model._default_manager.filter(**{field: user}).update(**{field: actor})
            if count:
                moved[model._meta.label_lower] = count
        if moved:
            meta["reassigned_to"] = actor.pk
            meta["reassigned"] = moved
        _audit(actor, "deleted", user, meta)
        try:
            with transaction.atomic():
                user.delete()
        except ProtectedError as exc:
            names = sorted({obj._meta.verbose_name for obj in exc.protected_objects})
            raise Conflict(f"User is still referenced by: {', '.join(names)}") from exc
    log.info("user %s deleted by %s", meta["email"], actor.email)
    return moved
