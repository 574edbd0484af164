"""The dashboard: what is proxied, whether nginx accepted it, what changed recently."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from portway.core.errors import PermissionDenied
from portway.core.fields import unicode_name
from portway.nginx.models import AuditLogEntry
from portway.web import queries
from portway.web.decorators import page

RECENT_AUDIT_ENTRIES = 8
EXPIRY_WINDOW = timedelta(days=30)


def _host_counts(user) -> dict | None:
    """Counts over every host kind the user may see (None when every kind is hidden):
    total, online, offline, disabled, `kinds`, one (label, count, url) per kind, and
    `offline_url`, the list of the first kind with an offline host ("" for none)."""
    totals = {"total": 0, "online": 0, "offline": 0, "disabled": 0}
    kinds = []
    offline_url = ""
    for model, label, url in queries.HOST_KINDS:
        try:
            hosts = queries.hosts(model, user)
        except PermissionDenied:
            continue
        count = hosts.count()
        totals["total"] += count
        totals["online"] += hosts.filter(enabled=True, nginx_online=True).count()
        offline = hosts.filter(enabled=True, nginx_online=False).count()
        totals["offline"] += offline
        offline_url = offline_url or (url if offline else "")
        totals["disabled"] += hosts.filter(enabled=False).count()
        kinds.append({"label": label, "count": count, "url": url})
    return {**totals, "kinds": kinds, "offline_url": offline_url} if kinds else None


def _certificate_counts(user) -> dict | None:
    try:
        certs = queries.certificates(user)
    except PermissionDenied:
        return None
    now = timezone.now()
    return {
        "total": certs.count(),
        "expiring": certs.filter(expires_on__gt=now, expires_on__lte=now + EXPIRY_WINDOW).count(),
        "expired": certs.filter(expires_on__lte=now).count(),
        # soonest first: what needs attention is at the top
        "soonest": list(certs.filter(expires_on__isnull=False).order_by("expires_on")[:5]),
    }


def describe(entry: AuditLogEntry) -> str:
    """'created proxy host example.com' from an audit entry's action, type and meta."""
    meta = entry.meta if isinstance(entry.meta, dict) else {}
    kind = entry.object_type.replace("-", " ")
    names = meta.get("domain_names")
    label = (
        ", ".join(unicode_name(str(n)) for n in names[:2]) + (" …" if len(names) > 2 else "")
        if isinstance(names, list) and names
        else meta.get("nice_name") or meta.get("name") or meta.get("email") or ""
    )
    if not label and isinstance(meta.get("incoming_port"), int):  # a stream
        label = f"port {meta['incoming_port']}"
    target = f"{kind} {label}".strip() if label else f"{kind} #{entry.object_id}"
    return f"{entry.action.replace('-', ' ')} {target}"


@page
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    audit = []
    if user.is_admin:
        for entry in AuditLogEntry.objects.select_related("user")[:RECENT_AUDIT_ENTRIES]:
            audit.append({"entry": entry, "text": describe(entry)})
    return render(
        request,
        "web/dashboard.html",
        {
            "title": "Dashboard",
            "hosts": _host_counts(user),
            "certs": _certificate_counts(user),
            "audit": audit,
            "can_add_host": queries.can_manage(user, "proxy_hosts"),
        },
    )
