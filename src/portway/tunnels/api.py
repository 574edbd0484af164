"""API: /api/portway/tunnels (Portway's own namespace, NPM's style).

GET    /api/portway/tunnels[?query=]            tunnel hosts the caller may see
POST   /api/portway/tunnels                     create (201)
GET    /api/portway/tunnels/{id}                one
PUT    /api/portway/tunnels/{id}                change any subset of fields
DELETE /api/portway/tunnels/{id}                delete (its sessions end)
POST   /api/portway/tunnels/{id}/enable|disable (disabling ends its sessions)
GET    /api/portway/tunnels/{id}/keys           access keys, without secrets
POST   /api/portway/tunnels/{id}/keys           {"name", "expires_on"?}: the key once
DELETE /api/portway/tunnels/{id}/keys/{key_id}  revoke (its sessions end)
GET    /api/portway/tunnels/{id}/sessions       live and recent sessions of one tunnel
GET    /api/portway/tunnel-sessions             of every visible tunnel
DELETE /api/portway/tunnel-sessions/{session}   end a live session
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from portway.core.params import ObjectId
from portway.core.wire import iso
from portway.tunnels import services
from portway.tunnels.models import Tunnel, TunnelKey
from portway.tunnels.schemas import (
    KeyCreate,
    KeyOut,
    SessionOut,
    TunnelCreate,
    TunnelOut,
    TunnelUpdate,
)

router = Router(tags=["tunnels"])


def tunnel_wire(tunnel: Tunnel) -> dict[str, Any]:
    """A tunnel host on the wire; nginx status merged into the client's `meta`."""
    return {
        "id": tunnel.pk,
        "created_on": iso(tunnel.created_on),
        "modified_on": iso(tunnel.modified_on),
        "owner_user_id": tunnel.owner_id,
        "domain_names": tunnel.domain_names,
        "forward_host": tunnel.forward_host,
        "forward_port": tunnel.forward_port,
        "certificate_id": tunnel.certificate_id or 0,
        "ssl_forced": tunnel.ssl_forced,
        "hsts_enabled": tunnel.hsts_enabled,
        "hsts_subdomains": tunnel.hsts_subdomains,
        "http2_support": tunnel.http2_support,
        "max_connections": tunnel.max_connections,
        "passthrough": tunnel.passthrough,
        "proxy_protocol": tunnel.proxy_protocol,
        "enabled": tunnel.enabled,
        "user_ids": sorted(u.pk for u in tunnel.users.all()),
        "meta": {
            **(tunnel.meta or {}),
            "nginx_online": tunnel.nginx_online,
            "nginx_err": tunnel.nginx_err,
            "nginx_serving_previous": tunnel.nginx_serving_previous,
            "certificate_warnings": tunnel.certificate_warnings,
        },
    }


def key_wire(key: TunnelKey, secret: str | None = None) -> dict[str, Any]:
    """An access key on the wire; `key` (the whole key) only when just created."""
    return {
        "id": key.pk,
        "tunnel_id": key.tunnel_id,
        "name": key.name,
        "key_id": key.key_id,
        "expires_on": iso(key.expires_on) if key.expires_on else None,
        "expired": key.expired,
        "created_on": iso(key.created_on),
        "key": secret,
    }


@router.get("/tunnels", response=list[TunnelOut], summary="List tunnel hosts")
def list_tunnels(request: HttpRequest, query: str | None = None):
    return [tunnel_wire(t) for t in services.list_tunnels(request.auth, query)]


@router.post("/tunnels", response={201: TunnelOut}, summary="Create a tunnel host")
def create_tunnel(request: HttpRequest, payload: TunnelCreate):
    tunnel = services.create_tunnel(request.auth, payload.model_dump(exclude_unset=True))
    return Status(201, tunnel_wire(services.get_tunnel(request.auth, tunnel.pk)))


@router.get("/tunnels/{tunnel_id}", response=TunnelOut, summary="Get a tunnel host")
def get_tunnel(request: HttpRequest, tunnel_id: ObjectId):
    return tunnel_wire(services.get_tunnel(request.auth, tunnel_id))


@router.put("/tunnels/{tunnel_id}", response=TunnelOut, summary="Update a tunnel host")
def update_tunnel(request: HttpRequest, tunnel_id: ObjectId, payload: TunnelUpdate):
    services.update_tunnel(request.auth, tunnel_id, payload.model_dump(exclude_unset=True))
    return tunnel_wire(services.get_tunnel(request.auth, tunnel_id))


@router.delete("/tunnels/{tunnel_id}", response=bool, summary="Delete a tunnel host")
def delete_tunnel(request: HttpRequest, tunnel_id: ObjectId):
    services.delete_tunnel(request.auth, tunnel_id)
    return True


@router.post("/tunnels/{tunnel_id}/enable", response=bool, summary="Enable a tunnel host")
def enable_tunnel(request: HttpRequest, tunnel_id: ObjectId):
    services.set_enabled(request.auth, tunnel_id, True)
    return True


@router.post("/tunnels/{tunnel_id}/disable", response=bool, summary="Disable a tunnel host")
def disable_tunnel(request: HttpRequest, tunnel_id: ObjectId):
    services.set_enabled(request.auth, tunnel_id, False)
    return True


@router.get("/tunnels/{tunnel_id}/keys", response=list[KeyOut], summary="List access keys")
def list_keys(request: HttpRequest, tunnel_id: ObjectId):
    return [key_wire(k) for k in services.list_keys(request.auth, tunnel_id)]


@router.post(
    "/tunnels/{tunnel_id}/keys",
    response={201: KeyOut},
    summary="Create an access key (the key is answered once)",
)
def create_key(request: HttpRequest, tunnel_id: ObjectId, payload: KeyCreate):
    row, secret = services.create_key(
        request.auth, tunnel_id, payload.model_dump(exclude_unset=True)
    )
    return Status(201, key_wire(row, secret))


@router.delete("/tunnels/{tunnel_id}/keys/{key_id}", response=bool, summary="Revoke an access key")
def revoke_key(request: HttpRequest, tunnel_id: ObjectId, key_id: ObjectId):
    services.revoke_key(request.auth, tunnel_id, key_id)
    return True


@router.get(
    "/tunnels/{tunnel_id}/sessions",
    response=list[SessionOut],
    summary="Live and recent sessions of a tunnel host",
)
def tunnel_sessions(request: HttpRequest, tunnel_id: ObjectId):
    services.get_tunnel(request.auth, tunnel_id)
    return services.list_sessions(request.auth, tunnel_id)


@router.get(
    "/tunnel-sessions", response=list[SessionOut], summary="Live and recent tunnel sessions"
)
def all_sessions(request: HttpRequest):
    return services.list_sessions(request.auth)


@router.delete("/tunnel-sessions/{session_id}", response=bool, summary="End a live tunnel session")
def kill_session(request: HttpRequest, session_id: str):
    services.kill_session(request.auth, session_id)
    return True
