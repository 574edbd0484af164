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
    config = getattr(settings, "PORTWAY", None)
    trusted = getattr(config, "trusted_proxies", ())
    # the admin server's own listen address is this machine's nginx (portway.core.https)
    own = getattr(config, "admin_bind", "") or None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    from_own = own is not None and address == ipaddress.ip_address(own)
    if not forwarded or not (from_own or any(address in network for network in trusted)):
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


def _is_secret(name: Any) -> bool:
    return isinstance(name, str) and (name in SECRET_FIELDS or name.endswith(_SECRET_SUFFIXES))


_SECRET_SUFFIXES = ("_password", "_secret", "_token", "_key", "_credentials", "_hash")


def _scrubbed(old: Any, new: Any) -> tuple[Any, Any]:
    """`old` and `new` with every secret inside (a dict key named like one, at any
    depth) replaced: "(hidden)" before, "(changed)" after when it differs."""
    if isinstance(old, dict) or isinstance(new, dict):
        old_map = old if isinstance(old, dict) else {}
        new_map = new if isinstance(new, dict) else {}
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for key in list(old_map) + [k for k in new_map if k not in old_map]:
            if _is_secret(key):
                if key in old_map:
                    before[key] = "(hidden)"
                if key in new_map:
                    differs = old_map.get(key) != new_map[key]
                    after[key] = "(changed)" if differs else "(hidden)"
                continue
            b, a = _scrubbed(old_map.get(key), new_map.get(key))
            if key in old_map:
                before[key] = b
            if key in new_map:
                after[key] = a
        return (before if isinstance(old, dict) else old), (after if isinstance(new, dict) else new)
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        pairs = [_scrubbed(o, n) for o, n in zip(old, new, strict=True)]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    if isinstance(old, list) or isinstance(new, list):
        return (
            [_scrubbed(o, o)[0] for o in old] if isinstance(old, list) else old,
            [_scrubbed(n, n)[1] for n in new] if isinstance(new, list) else new,
        )
    return old, new


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"before": old, "after": new}} for every field whose value differs.

    Secrets never appear: a field named in SECRET_FIELDS (or ending in _password,
    _secret, _token, _key, _credentials, _hash) shows "(hidden)" before and
    "(changed)" after, and so does such a key at any depth inside a JSON value (e.g. a
    certificate's `meta.dns_provider_credentials`).
    """
    diff: dict[str, dict[str, Any]] = {}
    for field in sorted(set(before) | set(after)):
        old, new = before.get(field), after.get(field)
        if old == new:
            continue
        if _is_secret(field):
            diff[field] = {"before": "(hidden)", "after": "(changed)"}
        else:
            shown_old, shown_new = _scrubbed(old, new)
            diff[field] = {"before": shown_old, "after": shown_new}
    return diff


# Bookkeeping columns no one changes by hand: left out of snapshots.
SNAPSHOT_SKIPS = frozenset(
    {"id", "created_on", "modified_on", "nginx_online", "nginx_err", "nginx_serving_previous"}
)


def snapshot(instance: Any, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A model instance's own columns as JSON values, for `record(before=, after=)`.

    Foreign keys appear as their id under the attribute name (`certificate_id`);
    dates as ISO 8601 text. SNAPSHOT_SKIPS and `skip` are left out; secrets are kept
    here (in memory) and hidden by `changes()`.
    """
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        name = field.attname
        if name in SNAPSHOT_SKIPS or name in skip:
            continue
        value = getattr(instance, name)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        data[name] = value
    return data


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
