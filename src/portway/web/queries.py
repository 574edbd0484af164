"""Read-only lists for the UI, through the owning app's service.

The services apply permissions (hidden sections answer PermissionDenied, visibility
"user" narrows to the user's own objects), so the dashboard counts and lists only what
the user may see.
"""

from __future__ import annotations

from django.db.models import QuerySet

from portway.accounts.models import User
from portway.accounts.permissions import can
from portway.certificates.services import list_certificates
from portway.core.errors import PermissionDenied
from portway.hosts.models import DeadHost, ProxyHost, RedirectionHost, Stream
from portway.hosts.services import list_hosts, list_proxy_hosts
from portway.tunnels.models import Tunnel

HOST_KINDS = (
    (ProxyHost, "proxy", "/proxy-hosts"),
    (RedirectionHost, "redirection", "/redirection-hosts"),
    (Stream, "stream", "/streams"),
    (DeadHost, "404", "/dead-hosts"),
    (Tunnel, "tunnel", "/tunnels"),
)
"""Every host kind the dashboard counts: (model, short label, list page)."""


def proxy_hosts(user: User, query: str | None = None) -> QuerySet:
    """Proxy hosts `user` may see, optionally filtered by a search text.

    Raises:
        PermissionDenied: the section is hidden for this user.
    """
    return list_proxy_hosts(user, query or None)


def hosts(model: type, user: User) -> QuerySet:
    """Hosts of one kind (a model of HOST_KINDS) `user` may see.

    Raises:
        PermissionDenied: the section is hidden for this user.
    """
    return list_hosts(model, user)


def certificates(user: User, query: str | None = None) -> QuerySet:
    """Certificates `user` may see.

    Raises:
        PermissionDenied: the section is hidden for this user.
    """
    return list_certificates(user, query or None) if query else list_certificates(user)


def can_manage(user: User, section: str) -> bool:
    """Whether to offer create/edit/delete buttons (the service still decides)."""
    return can(user, section, "manage")


__all__ = ["HOST_KINDS", "PermissionDenied", "can_manage", "certificates", "hosts", "proxy_hosts"]
