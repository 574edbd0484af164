"""Installation settings (default site), audit log and status, for the API and the UI."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Q, QuerySet

from portway.core.errors import FieldError, NotFound, PermissionDenied
from portway.core.params import is_id
from portway.nginx.models import AuditLogEntry, Setting

DEFAULT_SITE_APPLY_WAIT_SECONDS = 30  # as long as a host's create or update waits

DEFAULT_SITE_VALUES = ("congratulations", "404", "444", "redirect", "html")
MAX_HTML = 65536


def get_default_site() -> Setting:
    """The `default-site` setting (created with "congratulations" on first use)."""
    return Setting.get("default-site")


def _validate_default_site(value: Any, meta: Any) -> dict[str, str]:
    if value not in DEFAULT_SITE_VALUES:
        raise FieldError("value", f"must be one of {', '.join(DEFAULT_SITE_VALUES)}")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise FieldError("meta", "must be an object")
    clean: dict[str, str] = {}
    if value == "redirect":
        url = meta.get("redirect")
        if not isinstance(url, str) or not url.strip():
            raise FieldError("meta/redirect", "is required when value is redirect")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise FieldError("meta/redirect", "must be an absolute http:// or https:// URL")
        if len(url) > 2048:
            raise FieldError("meta/redirect", "must be at most 2048 characters")
        if any(c.isspace() or c in "\"'{};#\\" or ord(c) < 32 or ord(c) == 127 for c in url):
            raise FieldError(
                "meta/redirect",
                "must not contain spaces, control characters, quotes, braces, ';', '#' or '\\'",
            )
        if "$" in url:
            # nginx would read "$name" in the redirect target as one of its variables
            raise FieldError("meta/redirect", "must not contain '$' (write it as %24)")
        clean["redirect"] = url
    if value == "html":
        html = meta.get("html")
        if not isinstance(html, str) or not html.strip():
            raise FieldError("meta/html", "is required when value is html")
        if len(html) > MAX_HTML:
            raise FieldError("meta/html", f"must be at most {MAX_HTML} characters")
        clean["html"] = html
    return clean


def _check_with_nginx(value: str, clean: dict[str, str]) -> None:
    """Refuse a default site nginx would reject (`nginx -t`), before it is saved.

    Whatever is saved must load, or every later apply would have to work around it.
    """
    from portway.nginx.engine import get_engine
    from portway.nginx.render import DefaultSite

    engine = get_engine()
    if engine is None:  # no nginx on this machine: nothing to test against
        return
    site = DefaultSite(value, clean.get("redirect", ""), clean.get("html", ""))
    error = engine.preflight_default_site(site)
    if error is not None:
        field = {"redirect": "meta/redirect", "html": "meta/html"}.get(value, "value")
        raise FieldError(field, f"nginx rejected this setting: {error}")


def set_default_site(user, value: Any, meta: Any) -> Setting:  # noqa: ANN001
    """Change what unknown names get on both ports; admins only.

    Raises FieldError (value, meta/redirect, meta/html) for a value that is invalid or
    that `nginx -t` rejects; nothing is saved then.
    """
    if not user.is_admin:
        raise PermissionDenied("Only administrators may change settings")
    clean = _validate_default_site(value, meta)
    _check_with_nginx(value, clean)
    with transaction.atomic():
        setting = get_default_site()
        setting.store(user, value, clean)
    from portway.nginx.engine import request_apply, wait_applied

    # like a host's create or update, the answer comes once nginx serves the change
    wait_applied(request_apply(), timeout=DEFAULT_SITE_APPLY_WAIT_SECONDS)
    return setting


def import_default_site(user, value: Any, meta: Any) -> Setting:  # noqa: ANN001
    """Save the default site brought from another installation (the NPM import).

    Validated as set_default_site, but neither tested nor applied here: the import queues
    one apply for everything (a setting nginx refuses falls back to the congratulations
    page there). Raises FieldError (value, meta/redirect, meta/html).
    """
    if not user.is_admin:
        raise PermissionDenied("Only administrators may change settings")
    clean = _validate_default_site(value, meta)
    with transaction.atomic():
        setting = get_default_site()
        setting.value = value
        setting.meta = clean
        setting.save()
        AuditLogEntry.objects.create(
            user=user,
            object_type="setting",
            action="updated",
            meta={"id": setting.id, "value": value, "imported": "npm"},
        )
    return setting


_AUDIT_WORD = re.compile(r"^[a-z0-9-]{1,50}$")
AUDIT_PAGE_MAX = 1000
# What the audit log page offers in its filters (the API takes any word).
AUDIT_OBJECT_TYPES = ("user", "api-token", "proxy-host", "certificate", "setting")
AUDIT_ACTIONS = (
    "created",
    "updated",
    "deleted",
    "enabled",
    "disabled",
    "renewed",
    "login",
    "login-failed",
    "2fa-enabled",
    "2fa-disabled",
    "2fa-reset",
)


def _audit_word(value: str | None, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not _AUDIT_WORD.match(value):
        raise FieldError(field, "must be 1-50 lowercase letters, digits or '-', e.g. proxy-host")
    return value


def audit_entries(
    actor,  # noqa: ANN001
    *,
    user_id: int | str | None = None,
    object_type: str | None = None,
    object_id: int | str | None = None,
    action: str | None = None,
    query: str | None = None,
) -> QuerySet[AuditLogEntry]:
    """Audit log entries newest first, narrowed by the given filters (admins only).

    Args:
        user_id: who acted (an id; 0 means "nobody": failed logins to unknown accounts,
            the CLI, the renewal scheduler).
        object_type: e.g. "user", "proxy-host", "api-token".
        action: e.g. "updated", "login-failed".
        query: substring of the object type or action (NPM's `?query=`).

    Raises:
        PermissionDenied: `actor` is not an admin.
        FieldError: a filter that is not a number or a word.
    """
    if not actor.is_admin:
        raise PermissionDenied("Only administrators may read the audit log")
    entries = AuditLogEntry.objects.select_related("user").order_by("-created_on", "-id")
    if user_id not in (None, ""):
        text = str(user_id)
        if not is_id(text):
            raise FieldError("user_id", "must be a user id (a whole number)")
        entries = (
            entries.filter(user__isnull=True)
            if int(text) == 0
            else entries.filter(user_id=int(text))
        )
    if object_id not in (None, ""):
        text = str(object_id)
        if not is_id(text) or int(text) > 2**31 - 1:
            raise FieldError("object_id", "must be an object id (a whole number)")
        entries = entries.filter(object_id=int(text))
    if (cleaned := _audit_word(object_type, "object_type")) is not None:
        entries = entries.filter(object_type=cleaned)
    if (cleaned := _audit_word(action, "action")) is not None:
        entries = entries.filter(action=cleaned)
    if query:
        if len(query) > 100:
            raise FieldError("query", "must be at most 100 characters long")
        entries = entries.filter(Q(object_type__icontains=query) | Q(action__icontains=query))
    return entries


def get_setting(key: str) -> Setting:
    if key not in Setting.DEFAULTS:
        raise NotFound(f"Setting {key} not found")
    return Setting.get(key)


def apply_status() -> dict[str, Any]:
    """The apply engine's state in this process: live generation, pending work, last error.

    `fast_path`: {enabled, reason} (portway.nginx.fastengine; reason None when enabled);
    `last_apply_path`: "fast" (shared memory only, no reload), "reload" or None.
    `stuck` is True when the last apply put nothing live (nginx refused the whole
    configuration for a reason no host isolation could remove, or the apply crashed):
    changes saved since are not served until the cause is fixed. `last_error` also
    carries a problem that did not stop the apply (a default site nginx rejected).
    """
    from portway.nginx import engine

    worker = engine._worker
    report = engine._engine.last_report if engine._engine else None
    stuck = report is not None and report.generation is None
    return {
        "running": worker is not None,
        "pending": bool(worker and worker.pending),
        "applies": worker.applies if worker else 0,
        "generation": report.generation if report else None,
        "live_generation": engine._engine.live_generation() if engine._engine else None,
        "stuck": stuck,
        "hosts_not_live": (
            sum(1 for outcome in report.hosts.values() if not outcome.online) if report else 0
        ),
        "last_apply_seconds": round(report.seconds, 3) if report else None,
        "last_apply_tests": report.tests if report else None,
        "last_error": report.error if report else None,
        # routine changes through nginx's shared memory (no reload), or why not
        "fast_path": _fast_path_status(engine._engine),
        "last_apply_path": report.path if report else None,
    }


def _fast_path_status(current: Any) -> dict[str, Any]:
    """{enabled, reason} of the engine `current`, or what this installation's settings
    and machine give when no engine runs in this process (reason None when enabled)."""
    if current is not None:
        return {"enabled": current.fast_reason is None, "reason": current.fast_reason}
    from django.conf import settings

    from portway.nginx.engine import fast_path_unavailable

    reason = fast_path_unavailable(settings.PORTWAY)
    return {"enabled": reason is None, "reason": reason}
