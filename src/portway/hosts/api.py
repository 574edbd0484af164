"""API: /api/nginx/proxy-hosts (NPM's proxy-host endpoints, same wire format)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from portway.accounts.services import serialize_user
from portway.core.params import ObjectId
from portway.core.wire import iso
from portway.hosts import services
from portway.hosts.models import ProxyHost
from portway.hosts.schemas import ProxyHostCreate, ProxyHostOut, ProxyHostUpdate

router = Router(tags=["proxy-hosts"])

BOOL_FIELDS = (
    "ssl_forced",
    "caching_enabled",
    "block_exploits",
    "allow_websocket_upgrade",
    "http2_support",
    "enabled",
    "hsts_enabled",
    "hsts_subdomains",
    "trust_forwarded_proto",
    "cloudflare_only",
)


def certificate_wire(cert) -> dict[str, Any]:  # noqa: ANN001
    """A certificate as embedded by `?expand=certificate`: the certificates API's own object.

    One definition, so what may leave the server (never key material or DNS credentials,
    see `portway.certificates.services.public_meta`) is decided in one place.
    """
    from portway.certificates.api import certificate_wire as wire

    return wire(cert)


def host_wire(host: ProxyHost, expand: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """NPM's proxy-host object; server status merged into the client's own `meta`."""
    data: dict[str, Any] = {
        "id": host.pk,
        "created_on": iso(host.created_on),
        "modified_on": iso(host.modified_on),
        "owner_user_id": host.owner_id,
        "domain_names": host.domain_names,
        "forward_scheme": host.forward_scheme,
        "forward_host": host.forward_host,
        "forward_port": host.forward_port,
        "access_list_id": host.access_list_id,
        "certificate_id": host.certificate_id or 0,
        "advanced_config": host.advanced_config,
        "locations": host.locations,
        "meta": {
            **(host.meta or {}),
            "nginx_online": host.nginx_online,
            "nginx_err": host.nginx_err,
            "nginx_serving_previous": host.nginx_serving_previous,
            # saved anyway (the admin may know better), but browsers would refuse it
            "certificate_warnings": host.certificate_warnings,
        },
    }
    for name in BOOL_FIELDS:
        data[name] = bool(getattr(host, name))
    if "owner" in expand:
        data["owner"] = serialize_user(host.owner)
    if "certificate" in expand:
        data["certificate"] = certificate_wire(host.certificate) if host.certificate else None
    if "access_list" in expand:
        data["access_list"] = _access_list_wire(host.access_list_id)
    return data


def _access_list_wire(access_list_id: int) -> dict[str, Any] | None:
    """The access list as `?expand=access_list` embeds it (the access-list API's object)."""
    from portway.access.api import access_list_wire
    from portway.access.models import AccessList

    found = AccessList.objects.filter(pk=access_list_id).first() if access_list_id else None
    return access_list_wire(found) if found else None


def _expand(expand: str | None) -> set[str]:
    return {part.strip() for part in (expand or "").split(",") if part.strip()}


@router.get("", response=list[ProxyHostOut], exclude_unset=True, summary="List proxy hosts")
def list_hosts(request: HttpRequest, expand: str | None = None, query: str | None = None):
    wanted = _expand(expand)
    return [host_wire(h, wanted) for h in services.list_proxy_hosts(request.auth, query)]


@router.post("", response={201: ProxyHostOut}, exclude_unset=True, summary="Create a proxy host")
def create_host(request: HttpRequest, payload: ProxyHostCreate):
    host = services.create_proxy_host(request.auth, payload.model_dump(exclude_unset=True))
    return Status(201, host_wire(services.get_proxy_host(request.auth, host.pk)))


@router.get("/{host_id}", response=ProxyHostOut, exclude_unset=True, summary="Get a proxy host")
def get_host(request: HttpRequest, host_id: ObjectId, expand: str | None = None):
    return host_wire(services.get_proxy_host(request.auth, host_id), _expand(expand))


@router.put("/{host_id}", response=ProxyHostOut, exclude_unset=True, summary="Update a proxy host")
def update_host(request: HttpRequest, host_id: ObjectId, payload: ProxyHostUpdate):
    services.update_proxy_host(request.auth, host_id, payload.model_dump(exclude_unset=True))
    return host_wire(services.get_proxy_host(request.auth, host_id))


@router.delete("/{host_id}", response=bool, summary="Delete a proxy host")
def delete_host(request: HttpRequest, host_id: ObjectId):
    services.delete_proxy_host(request.auth, host_id)
    return True


@router.post("/{host_id}/enable", response=bool, summary="Enable a proxy host")
def enable_host(request: HttpRequest, host_id: ObjectId):
    services.enable_proxy_host(request.auth, host_id)
    return True


@router.post("/{host_id}/disable", response=bool, summary="Disable a proxy host")
def disable_host(request: HttpRequest, host_id: ObjectId):
    services.disable_proxy_host(request.auth, host_id)
    return True
