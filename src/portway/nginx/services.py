"""Installation settings (default site), audit log and status, for the API and the UI."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from portway.core.errors import FieldError, NotFound, PermissionDenied
from portway.nginx.models import AuditLogEntry, Setting

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
        if any(c.isspace() or c in "\"'{};#\\" or ord(c) < 32 for c in url) or len(url) > 2048:
            raise FieldError(
                "meta/redirect", "must not contain spaces, quotes, braces, ';', '#' or '\\'"
            )
        clean["redirect"] = url
    if value == "html":
        html = meta.get("html")
        if not isinstance(html, str) or not html.strip():
            raise FieldError("meta/html", "is required when value is html")
        if len(html) > MAX_HTML:
            raise FieldError("meta/html", f"must be at most {MAX_HTML} characters")
        clean["html"] = html
    return clean


def set_default_site(user, value: Any, meta: Any) -> Setting:  # noqa: ANN001
    """Change what unknown names get on both ports; admins only. Raises FieldError."""
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
            meta={"id": setting.id, "value": value},
        )
    from portway.nginx.engine import request_apply

    request_apply()
    return setting


def get_setting(key: str) -> Setting:
    if key not in Setting.DEFAULTS:
        raise NotFound(f"Setting {key} not found")
    return Setting.get(key)


def apply_status() -> dict[str, Any]:
    """The apply engine's state in this process: live generation, pending work, last error."""
    from portway.nginx import engine

    worker = engine._worker
    report = engine._engine.last_report if engine._engine else None
    return {
        "running": worker is not None,
        "pending": bool(worker and worker.pending),
        "applies": worker.applies if worker else 0,
        "generation": report.generation if report else None,
        "last_apply_seconds": round(report.seconds, 3) if report else None,
        "last_error": report.error if report else None,
    }
