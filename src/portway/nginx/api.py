"""API: /api/settings, /api/audit-log, /api/reports, and Portway's /api/nginx/status and
/api/portway/audit-log.

NPM's audit log object (components/audit-log-object.json) requires a `user_id` and an
`object_id` of at least 1, so GET /api/audit-log lists the entries that have both: changes
and sign-ins of existing users. Entries without them (a failed sign-in to an unknown
account, a setting change, actions of the CLI or the renewal scheduler, entries of a
deleted user) are in Portway's full log, GET /api/portway/audit-log, with `user_id` /
`object_id` null there; it takes the same filters and paging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import ConfigDict, Field

from portway.accounts.permissions import can, visible_queryset
from portway.accounts.schemas import UserOut
from portway.accounts.services import serialize_user
from portway.core.errors import NotFound, PermissionDenied
from portway.core.params import Limit, ObjectId, Offset
from portway.core.wire import iso
from portway.hosts.models import DeadHost, ProxyHost, RedirectionHost, Stream
from portway.nginx import admin_site, services
from portway.nginx.models import AuditLogEntry, Setting

settings_router = Router(tags=["settings"])
audit_router = Router(tags=["audit-log"])
reports_router = Router(tags=["reports"])
status_router = Router(tags=["nginx"])
portway_audit_router = Router(tags=["portway"])

# The entries NPM's audit log object can describe (user_id and object_id at least 1).
NPM_AUDIT_ROWS = Q(user__isnull=False, object_id__gte=1)


def setting_wire(setting: Setting) -> dict[str, Any]:
    return {
        "id": setting.id,
        "name": setting.name,
        "description": setting.description,
        "value": setting.value,
        "meta": setting.meta or {},
    }


class SettingOut(Schema):
    id: str
    name: str
    description: str
    value: str
    meta: dict[str, Any]


class AuditLogEntryOut(Schema):
    """NPM's audit log entry; `user` only with ?expand=user (null for a deleted user)."""

    id: int
    created_on: str
    modified_on: str
    user_id: int = Field(description="0 when the user no longer exists")
    object_type: str
    object_id: int
    action: str
    meta: dict[str, Any]
    user: UserOut | None = None


class PortwayAuditLogEntryOut(AuditLogEntryOut):
    """An entry of Portway's full audit log: `user_id` / `object_id` null when there is
    no such user (unknown account, CLI, scheduler, deleted user) or numeric object."""

    user_id: int | None = Field(description="null: nobody, or a deleted user")
    object_id: int | None = Field(description="null: the object has no numeric id")


class HostReportOut(Schema):
    proxy: int
    redirection: int
    stream: int
    dead: int


class SettingUpdate(Schema):
    model_config = ConfigDict(extra="forbid")

    value: Any
    meta: Any = None


def _admin(request: HttpRequest) -> None:
    if not request.auth.is_admin:
        raise PermissionDenied("Only administrators may read or change settings")


@settings_router.get("", response=list[SettingOut], summary="List settings")
def list_settings(request: HttpRequest):
    _admin(request)
    return [setting_wire(services.get_setting(key)) for key in Setting.DEFAULTS]


@settings_router.get("/{setting_id}", response=SettingOut, summary="Get a setting")
def get_setting(request: HttpRequest, setting_id: str):
    _admin(request)
    return setting_wire(services.get_setting(setting_id))


def _setters() -> dict[str, Callable[[Any, Any, Any], Setting]]:
    """Each setting's service setter, (user, value, meta) → the saved Setting, by id."""
    from portway.access.realip import set_real_ip
    from portway.accounts.gate import set_gate_setting

    return {
        "default-site": services.set_default_site,
        "real-ip": set_real_ip,
        admin_site.SETTING_ID: admin_site.set_admin_domain,
        "gate": set_gate_setting,
    }


@settings_router.put("/{setting_id}", response=SettingOut, summary="Change a setting")
def put_setting(request: HttpRequest, setting_id: str, payload: SettingUpdate):
    _admin(request)
    services.get_setting(setting_id)
    setter = _setters()[setting_id]
    return setting_wire(setter(request.auth, payload.value, payload.meta))


@settings_router.post(
    "/real-ip/refresh-cloudflare",
    response=SettingOut,
    summary="Portway: fetch Cloudflare's current IP ranges for the real-ip setting",
)
def refresh_cloudflare(request: HttpRequest):
    _admin(request)
    from portway.access.realip import get_setting, refresh_cloudflare

    refresh_cloudflare(request.auth)
    return setting_wire(get_setting())


def audit_wire(entry: AuditLogEntry, expand: set[str], *, npm: bool = True) -> dict[str, Any]:
    """An audit log object; the client's address rides in `meta.source_address` (NPM's
    schema forbids extra top-level keys). `npm=False`: Portway's form, with null
    `user_id` / `object_id` where there is none."""
    meta = dict(entry.meta or {})
    if entry.source_address:
        meta["source_address"] = entry.source_address
    data = {
        "id": entry.pk,
        "created_on": iso(entry.created_on),
        "modified_on": iso(entry.modified_on),
        "user_id": entry.user_id if entry.user_id or npm else None,
        "object_type": entry.object_type,
        "object_id": entry.object_id if entry.object_id or npm else None,
        "action": entry.action,
        "meta": meta,
    }
    if "user" in expand:
        data["user"] = serialize_user(entry.user) if entry.user else None
    return data


def _expand(raw: str | None) -> set[str]:
    return {p.strip() for p in (raw or "").split(",") if p.strip()}


class AuditLogFilters(Schema):
    """The query parameters of both audit logs (NPM's and Portway's full one)."""

    expand: str | None = None
    query: str | None = None
    user_id: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    action: str | None = None
    offset: Offset = 0
    limit: Limit = 100


def _entry(request: HttpRequest, entry_id: int) -> AuditLogEntry:
    """One audit log entry for an administrator, or NotFound."""
    _admin(request)
    entry = AuditLogEntry.objects.select_related("user").filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(f"Audit log entry {entry_id} not found")
    return entry


def _page(
    request: HttpRequest, filters: AuditLogFilters, rows: Q
) -> list[tuple[AuditLogEntry, set[str]]]:
    """The page of entries `filters` selects among `rows`, each with the expansions."""
    entries: QuerySet[AuditLogEntry] = services.audit_entries(
        request.auth,
        user_id=filters.user_id,
        object_type=filters.object_type,
        object_id=filters.object_id,
        action=filters.action,
        query=filters.query,
    ).filter(rows)
    wanted = _expand(filters.expand)
    return [(e, wanted) for e in entries[filters.offset : filters.offset + filters.limit]]


@audit_router.get(
    "",
    response=list[AuditLogEntryOut],
    exclude_unset=True,
    summary="Audit log, newest first (paged)",
)
def audit_log(
    request: HttpRequest,
    filters: Query[AuditLogFilters],
):
    """Newest first, the entries NPM's object describes (see the module docstring).
    Filters: `user_id`, `object_type`, `object_id`, `action`, `query` (substring of type
    or action); paged by `offset` and `limit` (1-1000)."""
    return [audit_wire(e, wanted) for e, wanted in _page(request, filters, NPM_AUDIT_ROWS)]


@audit_router.get(
    "/{entry_id}", response=AuditLogEntryOut, exclude_unset=True, summary="One audit log entry"
)
def audit_entry(request: HttpRequest, entry_id: ObjectId, expand: str | None = None):
    entry = _entry(request, entry_id)
    if not AuditLogEntry.objects.filter(NPM_AUDIT_ROWS, pk=entry_id).exists():
        raise NotFound(
            f"Audit log entry {entry_id} has no user or object id; "
            f"see /api/portway/audit-log/{entry_id}"
        )
    return audit_wire(entry, _expand(expand))


@portway_audit_router.get(
    "/audit-log",
    response=list[PortwayAuditLogEntryOut],
    exclude_unset=True,
    summary="Portway: the full audit log, newest first (paged)",
)
def portway_audit_log(
    request: HttpRequest,
    filters: Query[AuditLogFilters],
):
    """Every entry, newest first. Filters as /api/audit-log; `user_id=0` selects the
    entries of nobody (unknown accounts, the CLI, the scheduler, deleted users)."""
    return [audit_wire(e, wanted, npm=False) for e, wanted in _page(request, filters, Q())]


@portway_audit_router.get(
    "/audit-log/{entry_id}",
    response=PortwayAuditLogEntryOut,
    exclude_unset=True,
    summary="Portway: one audit log entry",
)
def portway_audit_entry(request: HttpRequest, entry_id: ObjectId, expand: str | None = None):
    entry = _entry(request, entry_id)
    return audit_wire(entry, _expand(expand), npm=False)


@reports_router.get("/hosts", response=HostReportOut, summary="Host counts")
def host_report(request: HttpRequest):
    """Counts of the hosts the caller may see (NPM: owned ones under visibility "user").

    A section the caller may not view counts 0: other users' hosts are not their business.
    """
    user = request.auth

    def count(section: str, model: type) -> int:
        if not can(user, section, "view"):
            return 0
        return visible_queryset(user, section, model.objects.all()).count()

    return {
        "proxy": count("proxy_hosts", ProxyHost),
        "redirection": count("redirection_hosts", RedirectionHost),
        "stream": count("streams", Stream),
        "dead": count("dead_hosts", DeadHost),
    }


# What a non-admin may know of the engine: whether a change is live yet. Everything else
# (errors quoting other users' hosts and file paths, generations, counters) is
# installation-wide and for administrators; keys added later stay admin-only by default.
STATUS_KEYS_FOR_EVERYONE = ("running", "pending")


@status_router.get("/status", response=dict[str, Any], summary="Portway: apply engine status")
def nginx_status(request: HttpRequest):
    """The apply engine's state; non-admins get only `running` and `pending`."""
    status = services.apply_status()
    if request.auth.is_admin:
        return status
    return {key: status[key] for key in STATUS_KEYS_FOR_EVERYONE}
