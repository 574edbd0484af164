"""API: /api/nginx/access-lists (NPM's access-list endpoints, same wire format).

Portway's login gate is set with two extra input fields, `portway_login` (bool) and
`portway_users` (user ids; empty: every enabled user), and read back with
`?expand=portway` (also on POST and PUT), so NPM clients see NPM's object unchanged.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from portway.access import services
from portway.access.models import AccessList
from portway.access.schemas import AccessListCreate, AccessListOut, AccessListUpdate
from portway.accounts.services import serialize_user
from portway.core.params import ObjectId
from portway.core.wire import iso

router = Router(tags=["access-lists"])
HINT = "********"  # the password itself is never kept, so nothing of it can be hinted at


def access_list_wire(
    access_list: AccessList,
    expand: set[str] = frozenset(),  # type: ignore[assignment]
    host_count: int | None = None,
) -> dict[str, Any]:
    """NPM's access-list object. No password or hash ever leaves: items carry
    `password: ""` and a fixed `hint`."""
    if host_count is None:
        host_count = services.hosts_using(access_list.pk).count()
    data: dict[str, Any] = {
        "id": access_list.pk,
        "created_on": iso(access_list.created_on),
        "modified_on": iso(access_list.modified_on),
        "owner_user_id": access_list.owner_id,
        "name": access_list.name,
        "meta": access_list.meta or {},
        "satisfy_any": access_list.satisfy_any,
        "pass_auth": access_list.pass_auth,
        "proxy_host_count": host_count,
    }
    if "owner" in expand:
        data["owner"] = serialize_user(access_list.owner)
    if "items" in expand:
        data["items"] = [
            {
                "id": item.pk,
                "created_on": iso(item.created_on),
                "modified_on": iso(item.modified_on),
                "access_list_id": access_list.pk,
                "username": item.username,
                "password": "",
                "hint": HINT,
            }
            for item in access_list.items.all()
        ]
    if "clients" in expand:
        data["clients"] = [
            {
                "id": client.pk,
                "created_on": iso(client.created_on),
                "modified_on": iso(client.modified_on),
                "access_list_id": access_list.pk,
                "address": client.address,
                "directive": client.directive,
                "meta": {},
            }
            for client in access_list.clients.all()
        ]
    if "portway" in expand:
        # Portway's login gate (portway.access.gate); not in NPM's object
        data["portway_login"] = access_list.portway_login
        data["portway_users"] = list(access_list.portway_users or [])
    if "proxy_hosts" in expand:
        from portway.hosts.api import host_wire

        data["proxy_hosts"] = [host_wire(h) for h in services.hosts_using(access_list.pk)]
    return data


def _expand(expand: str | None) -> set[str]:
    return {part.strip() for part in (expand or "").split(",") if part.strip()}


@router.get("", response=list[AccessListOut], exclude_unset=True, summary="List access lists")
def list_access_lists(request: HttpRequest, expand: str | None = None, query: str | None = None):
    lists = list(services.list_access_lists(request.auth, query))
    counts = services.host_counts([a.pk for a in lists])
    wanted = _expand(expand)
    return [access_list_wire(a, wanted, counts.get(a.pk, 0)) for a in lists]


@router.post("", response={201: AccessListOut}, exclude_unset=True, summary="Create an access list")
def create_access_list(request: HttpRequest, payload: AccessListCreate, expand: str | None = None):
    created = services.create_access_list(request.auth, payload.model_dump(exclude_unset=True))
    return Status(201, access_list_wire(created, {"items", "clients"} | _expand(expand)))


@router.get(
    "/{access_list_id}", response=AccessListOut, exclude_unset=True, summary="Get an access list"
)
def get_access_list(request: HttpRequest, access_list_id: ObjectId, expand: str | None = None):
    found = services.get_access_list(request.auth, access_list_id)
    return access_list_wire(found, _expand(expand))


@router.put(
    "/{access_list_id}",
    response=AccessListOut,
    exclude_unset=True,
    summary="Update an access list (every host using it is applied again)",
)
def update_access_list(
    request: HttpRequest,
    access_list_id: ObjectId,
    payload: AccessListUpdate,
    expand: str | None = None,
):
    services.update_access_list(
        request.auth, access_list_id, payload.model_dump(exclude_unset=True)
    )
    found = services.get_access_list(request.auth, access_list_id)
    return access_list_wire(found, {"items", "clients"} | _expand(expand))


@router.delete(
    "/{access_list_id}",
    response=bool,
    summary="Delete an access list (409 naming the hosts that still use it)",
)
def delete_access_list(request: HttpRequest, access_list_id: ObjectId):
    services.delete_access_list(request.auth, access_list_id)
    return True
