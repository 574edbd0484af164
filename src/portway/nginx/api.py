"""API: /api/settings, /api/audit-log, /api/reports, and Portway's /api/nginx/status."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from portway.accounts.permissions import can, visible_queryset
from portway.accounts.schemas import UserOut
from portway.accounts.services import serialize_user
from portway.core.errors import NotFound, PermissionDenied
from portway.core.params import Limit, ObjectId, Offset
from portway.core.wire import iso
from portway.hosts.models import ProxyHost
from portway.nginx import services
from portway.nginx.models import AuditLogEntry, Setting

settings_router = Router(tags=["settings"])
audit_router = Router(tags=["audit-log"])
reports_router = Router(tags=["reports"])
status_router = Router(tags=["nginx"])


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


@settings_router.put("/{setting_id}", response=SettingOut, summary="Change a setting")
def put_setting(request: HttpRequest, setting_id: str, payload: SettingUpdate):
    _admin(request)
    services.get_setting(setting_id)
    if setting_id == "real-ip":
        from portway.access.realip import set_real_ip

        return setting_wire(set_real_ip(request.auth, payload.value, payload.meta))
    return setting_wire(services.set_default_site(request.auth, payload.value, payload.meta))


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


def audit_wire(entry: AuditLogEntry, expand: set[str]) -> dict[str, Any]:
    """NPM's audit log object; the client's address rides in `meta.source_address`
    (NPM's schema forbids extra top-level keys)."""
    meta = dict(entry.meta or {})
    if entry.source_address:
        meta["source_address"] = entry.source_address
    data = {
        "id": entry.pk,
        "created_on": iso(entry.created_on),
        "modified_on": iso(entry.modified_on),
        "user_id": entry.user_id or 0,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "action": entry.action,
        "meta": meta,
    }
    if "user" in expand:
        data["user"] = serialize_user(entry.user) if entry.user else None
    return data


@audit_router.get(
    "",
    response=list[AuditLogEntryOut],
    exclude_unset=True,
    summary="Audit log, newest first (paged)",
)
def audit_log(
    request: HttpRequest,
    expand: str | None = None,
    query: str | None = None,
    user_id: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    offset: Offset = 0,
    limit: Limit = 100,
):
    """Newest first. Filters: `user_id` (0: nobody), `object_type`, `object_id`, `action`,
    `query` (substring of type or action); paged by `offset` and `limit` (1-1000)."""
    entries = services.audit_entries(
        request.auth,
        user_id=user_id,
        object_type=object_type,
        object_id=object_id,
        action=action,
        query=query,
    )
    wanted = {p.strip() for p in (expand or "").split(",") if p.strip()}
    return [audit_wire(e, wanted) for e in entries[offset : offset + limit]]


@audit_router.get(
    "/{entry_id}", response=AuditLogEntryOut, exclude_unset=True, summary="One audit log entry"
)
def audit_entry(request: HttpRequest, entry_id: ObjectId, expand: str | None = None):
    _admin(request)
    entry = AuditLogEntry.objects.select_related("user").filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(f"Audit log entry {entry_id} not found")
    return audit_wire(entry, {p.strip() for p in (expand or "").split(",") if p.strip()})


@reports_router.get("/hosts", response=HostReportOut, summary="Host counts")
def host_report(request: HttpRequest):
    """Counts of the hosts the caller may see (NPM: owned ones under visibility "user").

    A section the caller may not view counts 0: other users' hosts are not their business.
    """
    user = request.auth
    proxy = (
        visible_queryset(user, "proxy_hosts", ProxyHost.objects.all()).count()
        if can(user, "proxy_hosts", "view")
        else 0
    )
    return {"proxy": proxy, "redirection": 0, "stream": 0, "dead": 0}


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
