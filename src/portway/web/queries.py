"""Read-only lists for the UI, through the owning app's service when it provides one.

Services apply permissions (visibility, hidden sections). Until a service exists, the
ORM fallback applies the same visibility rule read-only.
"""

from __future__ import annotations

from django.db.models import QuerySet

from portway.core.errors import PermissionDenied


def _visible(user, section: str, queryset: QuerySet) -> QuerySet:
    try:
        from portway.accounts.permissions import require, visible_queryset
    except ImportError:  # pragma: no cover - permissions module not there yet
        return queryset if user.is_admin else queryset.filter(owner_id=user.pk)
    require(user, section, "view")
    return visible_queryset(user, section, queryset)


def proxy_hosts(user, query: str | None = None) -> QuerySet:
    """Proxy hosts `user` may see, optionally filtered by a search text.

    Raises:
        PermissionDenied: the section is hidden for this user.
    """
    try:
        from portway.hosts.services import list_proxy_hosts
    except ImportError:
        from django.db.models import Q

        from portway.hosts.models import ProxyHost

        hosts = _visible(user, "proxy_hosts", ProxyHost.objects.select_related("certificate"))
        if query:
            hosts = hosts.filter(
                Q(domain_names__icontains=query) | Q(forward_host__icontains=query)
            )
        return hosts
    return list_proxy_hosts(user, query or None)


def certificates(user, query: str | None = None) -> QuerySet:
    """Certificates `user` may see.

    Raises:
        PermissionDenied: the section is hidden for this user.
    """
    try:
        from portway.certificates.services import list_certificates
    except ImportError:
        from portway.certificates.models import Certificate

        certs = _visible(user, "certificates", Certificate.objects.all())
        if query:
            certs = certs.filter(nice_name__icontains=query)
        return certs
    return list_certificates(user, query or None) if query else list_certificates(user)


def can_manage(user, section: str) -> bool:
    """Whether to offer create/edit/delete buttons (the service still decides)."""
    try:
        from portway.accounts.permissions import can
    except ImportError:  # pragma: no cover
        return True
    return can(user, section, "manage")


__all__ = ["PermissionDenied", "can_manage", "certificates", "proxy_hosts"]
