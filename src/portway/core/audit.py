"""The audit log's context: who is asking from where, and what a change changed.

`SourceAddressMiddleware` remembers the client address of the request being served
(waitress serves the admin port directly, so REMOTE_ADDR is the peer's address), and
`AuditLogEntry.save()` stamps every new entry with it, so services in every app record
"from where" without passing the request down. `changes()` computes the before/after of
the fields a change touched, leaving secrets out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

_source: ContextVar[str | None] = ContextVar("portway_audit_source", default=None)

# Fields never copied into the audit log, whatever their owner calls them.
SECRET_FIELDS = frozenset(
    {
        "password",
        "password_hash",
        "secret",
        "secret_hash",
        "current",
        "auth",
        "token",
        "totp_secret",
        "backup_codes",
        "key",
        "certificate_key",
        "private_key",
        "dns_provider_credentials",
        "credentials",
    }
)


def current_source() -> str | None:
    """The client address of the request being served, or None outside a request."""
    return _source.get()


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address, or None when the peer's is not an IP address.

    The peer (REMOTE_ADDR), unless it is one of PORTWAY_TRUSTED_PROXIES and sent
    `X-Forwarded-For`: then the last address in that header that is not a trusted proxy
    (each proxy appends the address it saw, as nginx's $proxy_add_x_forwarded_for
    does, so the entries left of it are whatever the client wrote). Behind the admin UI's
    usual HTTPS proxy (a proxy host on this machine) every peer is loopback; without
    this the sign-in throttle and the audit log would count all clients as one.
    """
    from django.conf import settings

    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return None
    trusted = getattr(getattr(settings, "PORTWAY", None), "trusted_proxies", ())
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded or not any(address in network for network in trusted):
        return str(address)
    for entry in reversed(forwarded.split(",")):
        try:
            hop = ipaddress.ip_address(entry.strip())
        except ValueError:
            break  # not written by a proxy we trust: the last good hop is the client
        address = hop
        if not any(hop in network for network in trusted):
            break
    return str(address)


class SourceAddressMiddleware:
    """Makes the request's client address available to `current_source()`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _source.set(client_address(request))
        try:
            return self.get_response(request)
        finally:
            _source.reset(token)


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"before": old, "after": new}} for every field whose value differs.

    Fields named in SECRET_FIELDS appear with both values replaced by "(changed)" so the
    log says a secret changed without holding it.
    """
    diff: dict[str, dict[str, Any]] = {}
    for field in sorted(set(before) | set(after)):
        old, new = before.get(field), after.get(field)
        if old == new:
            continue
        if field in SECRET_FIELDS:
            diff[field] = {"before": "(hidden)", "after": "(changed)"}
        else:
            diff[field] = {"before": old, "after": new}
    return diff


def record(
    user: Any,
    object_type: str,
    object_id: int,
    action: str,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    **meta: Any,
) -> Any:
    """Write one audit-log entry; the one way every app records a change.

    Args:
        user: the acting user (None: the system, e.g. a renewal).
        object_type: "proxy-host", "redirection-host", "dead-host", "certificate",
            "access-list", "user", "setting"...
        action: "created", "updated", "deleted", "enabled", "disabled", "renewed"...
        before, after: the object's audited fields before and after the change (plain
            JSON values); the differing ones are kept under meta["changes"] as
            {field: {"before", "after"}}, secrets (SECRET_FIELDS) as "(hidden)"/"(changed)".
        meta: more context for the entry (e.g. the object's name).
    Returns:
        The saved AuditLogEntry (the source address is stamped by its save()).
    """
    from django.apps import apps

    if before is not None or after is not None:
        diff = changes(before or {}, after or {})
        if diff:
            meta["changes"] = diff
    entry_model = apps.get_model("nginx", "AuditLogEntry")
    return entry_model.objects.create(
        user=user, object_type=object_type, object_id=object_id, action=action, meta=meta
    )
