"""Per-section permissions for non-admin users (NPM's permission object).

Other apps call these from their services:

    require(user, "proxy_hosts", "manage")          # raises PermissionDenied
    hosts = visible_queryset(user, "proxy_hosts", ProxyHost.objects.all())

Admins pass every check and see everything. A non-admin's `Permission` row says, per
section, `hidden` < `view` < `manage`, and `visibility` says whether they see every
object (`all`) or only the ones they own (`user`). Users created before a row existed get
one with NPM's defaults the first time it is needed.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from django.db.models import Model, QuerySet

from portway.accounts.models import Permission, User
from portway.core.errors import NotAuthenticated, PermissionDenied

SECTIONS = (
    "proxy_hosts",
    "redirection_hosts",
    "dead_hosts",
    "streams",
    "access_lists",
    "certificates",
)
LEVELS = ("hidden", "view", "manage")
VISIBILITIES = ("all", "user")
_RANK = {level: rank for rank, level in enumerate(LEVELS)}

# What a user created through the API or the UI may do until an admin grants more.
NEW_USER_PERMISSIONS = {"visibility": "user", **{section: "hidden" for section in SECTIONS}}

Level = Literal["view", "manage"]
M = TypeVar("M", bound=Model)


def permission_for(user: User) -> Permission:
    """The user's Permission row, created with NPM's defaults if missing.

    Defaults: every section `manage`; visibility `all` for admins, `user` otherwise.
    """
    try:
        return user.permission
    except Permission.DoesNotExist:
        pass
    # get_or_create, not create: two requests may race to add the missing row.
    permission, _ = Permission.objects.get_or_create(
        user=user, defaults={"visibility": "all" if user.is_admin else "user"}
    )
    user.permission = permission
    return permission


def _check_section(section: str) -> None:
    if section not in SECTIONS:
        # A caller bug, not a client error: fail loudly rather than deny or allow.
        raise ValueError(f"unknown permission section {section!r}; expected one of {SECTIONS}")


def _check_user(user: User | None) -> User:
    if user is None or not getattr(user, "is_authenticated", False) or user.is_disabled:
        raise NotAuthenticated("Authentication required")
    return user


def can(user: User | None, section: str, level: Level) -> bool:
    """Whether `user` may `level` ("view" or "manage") objects of `section`.

    Raises:
        ValueError: `section` or `level` is not a known name (a programming error).
    """
    _check_section(section)
    if level not in ("view", "manage"):
        raise ValueError(f"unknown permission level {level!r}; expected 'view' or 'manage'")
    if user is None or not getattr(user, "is_authenticated", False) or user.is_disabled:
        return False
    if user.is_admin:
        return True
    granted = getattr(permission_for(user), section)
    return _RANK.get(granted, 0) >= _RANK[level]


def require(user: User | None, section: str, level: Level) -> None:
    """Raise unless `user` may `level` ("view" or "manage") objects of `section`.

    Args:
        user: the acting user (request.auth); admins always pass.
        section: one of SECTIONS, e.g. "proxy_hosts".
        level: "view" to read, "manage" to create, change or delete.

    Raises:
        NotAuthenticated: no user, or the user is disabled.
        PermissionDenied: the user's permission for `section` is below `level`.
        ValueError: unknown section or level (a programming error).
    """
    _check_user(user)
    if not can(user, section, level):
        label = section.replace("_", " ")
        raise PermissionDenied(f"You do not have permission to {level} {label}")


def visible_queryset(user: User, section: str, queryset: QuerySet[M]) -> QuerySet[M]:
    """`queryset` narrowed to what `user` may see in `section`.

    Non-admins whose visibility is "user" see only objects they own (`owner_id`); admins
    and visibility "all" see everything. This does not check the section level: call
    `require(user, section, "view")` first where a hidden section must answer 403.

    Raises:
        NotAuthenticated: no user, or the user is disabled.
        ValueError: unknown section (a programming error).
    """
    _check_section(section)
    _check_user(user)
    if user.is_admin or permission_for(user).visibility == "all":
        return queryset
    return queryset.filter(owner_id=user.pk)
