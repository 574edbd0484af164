"""API: /api/nginx/proxy-hosts, /redirection-hosts, /dead-hosts and /streams (NPM's
endpoints and wire format; one generic router per kind beyond the proxy host's own).

NPM's redirection-host object allows no key of its own, so what Portway adds to it (the
access list) is answered by Portway's own endpoints (`portway_router`, mounted at
/api/portway):

    GET /api/portway/redirection-hosts[/{id}]   NPM's object plus `access_list_id`
        (?expand=owner,certificate,access_list; ?query= as NPM's list).

`access_list_id` is accepted on NPM's POST and PUT of a redirection host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from portway.accounts.services import serialize_user
from portway.core.params import Limit, ObjectId
from portway.core.wire import iso
from portway.hosts import services
from portway.hosts.models import DeadHost, HostBase, ProxyHost, RedirectionHost, Stream
from portway.hosts.schemas import (
    DeadHostCreate,
    DeadHostOut,
    DeadHostUpdate,
    PortwayRedirectionHostOut,
    ProxyHostCreate,
    ProxyHostOut,
    ProxyHostUpdate,
    RedirectionHostCreate,
    RedirectionHostOut,
    RedirectionHostUpdate,
    StreamCreate,
    StreamOut,
    StreamUpdate,
)

router = Router(tags=["proxy-hosts"])
portway_router = Router(tags=["portway"])

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


SITE_BOOL_FIELDS = (
    "ssl_forced",
    "hsts_enabled",
    "hsts_subdomains",
    "http2_support",
    "enabled",
)
KIND_FIELDS = {
    "redirection": ("forward_http_code", "forward_scheme", "forward_domain_name"),
    "dead": (),
}
KIND_BOOL_FIELDS = {"redirection": ("preserve_path", "block_exploits"), "dead": ()}


def site_wire(
    host: HostBase,
    expand: set[str] = frozenset(),  # type: ignore[assignment]
    *,
    portway: bool = False,
) -> dict[str, Any]:
    """NPM's redirection-host or dead-host object; server status merged into `meta`.

    `portway`: Portway's view (/api/portway/...), which adds what NPM's object has no room
    for: a redirection host's `access_list_id` (and `access_list` with ?expand).
    """
    data: dict[str, Any] = {
        "id": host.pk,
        "created_on": iso(host.created_on),
        "modified_on": iso(host.modified_on),
        "owner_user_id": host.owner_id,
        "domain_names": host.domain_names,
        "certificate_id": host.certificate_id or 0,
        "advanced_config": host.advanced_config,
        "meta": {
            **(host.meta or {}),
            "nginx_online": host.nginx_online,
            "nginx_err": host.nginx_err,
            "nginx_serving_previous": host.nginx_serving_previous,
            "certificate_warnings": host.certificate_warnings,
        },
    }
    for name in KIND_FIELDS[host.KIND]:
        data[name] = getattr(host, name)
    for name in SITE_BOOL_FIELDS + KIND_BOOL_FIELDS[host.KIND]:
        data[name] = bool(getattr(host, name))
    if "owner" in expand:
        data["owner"] = serialize_user(host.owner)
    if "certificate" in expand:
        data["certificate"] = certificate_wire(host.certificate) if host.certificate else None
    if portway and hasattr(host, "access_list_id"):
        data["access_list_id"] = host.access_list_id
        if "access_list" in expand:
            data["access_list"] = _access_list_wire(host.access_list_id)
    return data


def stream_wire(stream: Stream, expand: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """NPM's stream object; server status merged into the client's own `meta`."""
    data: dict[str, Any] = {
        "id": stream.pk,
        "created_on": iso(stream.created_on),
        "modified_on": iso(stream.modified_on),
        "owner_user_id": stream.owner_id,
        "incoming_port": stream.incoming_port,
        "forwarding_host": stream.forwarding_host,
        "forwarding_port": stream.forwarding_port,
        "tcp_forwarding": bool(stream.tcp_forwarding),
        "udp_forwarding": bool(stream.udp_forwarding),
        "certificate_id": stream.certificate_id or 0,
        "enabled": bool(stream.enabled),
        "meta": {
            **(stream.meta or {}),
            "nginx_online": stream.nginx_online,
            "nginx_err": stream.nginx_err,
            "nginx_serving_previous": stream.nginx_serving_previous,
        },
    }
    if "owner" in expand:
        data["owner"] = serialize_user(stream.owner)
    if "certificate" in expand:
        data["certificate"] = certificate_wire(stream.certificate) if stream.certificate else None
    return data


def any_host_wire(host: HostBase | Stream) -> dict[str, Any]:
    """The NPM wire object of a host of any kind (proxy, redirection, 404, stream)."""
    if isinstance(host, Stream):
        return stream_wire(host)
    return host_wire(host) if host.KIND == "proxy" else site_wire(host)


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


def kind_router(
    model: type[HostBase] | type[Stream],
    out: type,
    create: type,
    update: type,
    tag: str,
    wire: Callable[..., dict[str, Any]] = site_wire,
) -> Router:
    """NPM's verbs for one host kind: list, create, get, update, delete, enable, disable.

    `out`, `create` and `update` are the kind's response and request schemas, `wire`
    turns a row into its response (row, expand set); the services do the validation
    (the same for the UI), the router only speaks the wire.
    """
    kind_router = Router(tags=[tag])
    label = model.LABEL

    @kind_router.get(
        "",
        response=list[out],
        exclude_unset=True,
        summary=f"List {label}s",
        operation_id=f"{model.KIND}_host_list",
    )
    def list_sites(request: HttpRequest, expand: str | None = None, query: str | None = None):
        wanted = _expand(expand)
        return [wire(h, wanted) for h in services.list_hosts(model, request.auth, query)]

    def create_site(request: HttpRequest, payload):  # noqa: ANN001 - `create`, set below
        host = services.create_host(model, request.auth, payload.model_dump(exclude_unset=True))
        return Status(201, wire(services.get_host(model, request.auth, host.pk)))

    # The schemas are this call's arguments: Ninja reads them from the annotations, which
    # (with postponed evaluation) must be the classes themselves, not their names.
    create_site.__annotations__.update(request=HttpRequest, payload=create)
    kind_router.post(
        "",
        response={201: out},
        exclude_unset=True,
        summary=f"Create a {label}",
        operation_id=f"{model.KIND}_host_create",
    )(create_site)

    @kind_router.get(
        "/{host_id}",
        response=out,
        exclude_unset=True,
        summary=f"Get a {label}",
        operation_id=f"{model.KIND}_host_get",
    )
    def get_site(request: HttpRequest, host_id: ObjectId, expand: str | None = None):
        return wire(services.get_host(model, request.auth, host_id), _expand(expand))

    def update_site(request: HttpRequest, host_id: ObjectId, payload):  # noqa: ANN001
        services.update_host(model, request.auth, host_id, payload.model_dump(exclude_unset=True))
        return wire(services.get_host(model, request.auth, host_id))

    update_site.__annotations__.update(request=HttpRequest, host_id=ObjectId, payload=update)
    kind_router.put(
        "/{host_id}",
        response=out,
        exclude_unset=True,
        summary=f"Update a {label}",
        operation_id=f"{model.KIND}_host_update",
    )(update_site)

    @kind_router.delete(
        "/{host_id}",
        response=bool,
        summary=f"Delete a {label}",
        operation_id=f"{model.KIND}_host_delete",
    )
    def delete_site(request: HttpRequest, host_id: ObjectId):
        services.delete_host(model, request.auth, host_id)
        return True

    @kind_router.post(
        "/{host_id}/enable",
        response=bool,
        summary=f"Enable a {label}",
        operation_id=f"{model.KIND}_host_enable",
    )
    def enable_site(request: HttpRequest, host_id: ObjectId):
        services.set_host_enabled(model, request.auth, host_id, True)
        return True

    @kind_router.post(
        "/{host_id}/disable",
        response=bool,
        summary=f"Disable a {label}",
        operation_id=f"{model.KIND}_host_disable",
    )
    def disable_site(request: HttpRequest, host_id: ObjectId):
        services.set_host_enabled(model, request.auth, host_id, False)
        return True

    return kind_router


redirection_router = kind_router(
    RedirectionHost,
    RedirectionHostOut,
    RedirectionHostCreate,
    RedirectionHostUpdate,
    "redirection-hosts",
)
dead_router = kind_router(DeadHost, DeadHostOut, DeadHostCreate, DeadHostUpdate, "dead-hosts")
stream_router = kind_router(Stream, StreamOut, StreamCreate, StreamUpdate, "streams", stream_wire)


# --------------------------------------------------------------------------- Portway's own


@portway_router.get(
    "/redirection-hosts",
    response=list[PortwayRedirectionHostOut],
    exclude_unset=True,
    summary="Portway: redirection hosts with their access list",
)
def portway_list_redirection_hosts(
    request: HttpRequest, expand: str | None = None, query: str | None = None
):
    wanted = _expand(expand)
    hosts = services.list_hosts(RedirectionHost, request.auth, query)
    return [site_wire(h, wanted, portway=True) for h in hosts]


@portway_router.get(
    "/redirection-hosts/{host_id}",
    response=PortwayRedirectionHostOut,
    exclude_unset=True,
    summary="Portway: a redirection host with its access list",
)
def portway_get_redirection_host(
    request: HttpRequest, host_id: ObjectId, expand: str | None = None
):
    host = services.get_host(RedirectionHost, request.auth, host_id)
    return site_wire(host, _expand(expand), portway=True)


# ----- Portway's own: a host's nginx logs (GET /api/portway/<kind slug>/{id}/logs) -------
portway_logs_router = Router(tags=["portway"])
LOG_SLUGS: dict[str, type[HostBase]] = {
    "proxy-hosts": ProxyHost,
    "redirection-hosts": RedirectionHost,
    "dead-hosts": DeadHost,
}


class HostLogOut(Schema):
    """The end of one host's nginx log, oldest line first."""

    host_id: int
    log: str = Field(description="access or error")
    lines: list[str]
    truncated: bool = Field(description="older lines exist beyond what was read")


def _log_route(slug: str, model: type[HostBase]) -> None:
    def host_logs(
        request: HttpRequest,
        host_id: ObjectId,
        log: str = "access",
        query: str = "",
        lines: Limit = 100,
    ):
        found = services.host_log(model, request.auth, host_id, log, query, lines)
        return {"host_id": host_id, "log": log, "lines": found.lines, "truncated": found.truncated}

    portway_logs_router.get(
        f"/{slug}/{{host_id}}/logs",
        response=HostLogOut,
        summary=f"The last lines of a {model.LABEL}'s access or error log",
        description=(
            "`log`: access (default) or error; `query`: keep lines containing this text "
            "(case-insensitive, at most 200 characters); `lines`: 1-1000 (default 100). "
            "Anyone who may view the host may read its logs."
        ),
        operation_id=f"{model.KIND}_host_logs",
    )(host_logs)


for _slug, _model in LOG_SLUGS.items():
    _log_route(_slug, _model)
