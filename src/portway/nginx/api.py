"""API: /api/settings, /api/audit-log, /api/reports."""

from __future__ import annotations

from ninja import Router

settings_router = Router(tags=["settings"])
audit_router = Router(tags=["audit-log"])
reports_router = Router(tags=["reports"])
