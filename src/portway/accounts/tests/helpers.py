"""Assertion helpers for the accounts tests."""

from __future__ import annotations

from portway.accounts.models import Permission, User
from portway.nginx.models import AuditLogEntry
from portway.testing.wire import USER_KEYS  # noqa: F401  (re-exported for the tests)

ISO_Z = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


def snapshot() -> tuple:
    """Everything a user request can change, to prove a rejected one changed nothing."""
    users = list(User.objects.order_by("id").values())
    permissions = list(Permission.objects.order_by("id").values())
    audit = list(AuditLogEntry.objects.order_by("id").values_list("id", flat=True))
    return users, permissions, audit
