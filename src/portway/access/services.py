"""Access-list operations shared by the API and the UI.

Each function takes the acting user, validates at the edge (portway.access.schemas),
changes nothing when it raises, writes the list's htpasswd file after the change is
committed and asks the nginx engine to apply, which re-renders every host that uses the
list. Errors are portway.core.errors exceptions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from pydantic import BaseModel, ValidationError

from portway.access.htpasswd import hash_password, htpasswd_text, write_private
from portway.access.models import AccessList, AccessListClient, AccessListItem
from portway.access.render import AccessSpec
from portway.access.schemas import AccessListCreate, AccessListUpdate
from portway.accounts.permissions import require, visible_queryset
from portway.core.audit import record
from portway.core.errors import BadRequest, Conflict, FieldError, InvalidFields, NotFound
from portway.core.validation import field_errors
from portway.nginx.render import Paths, worker_group_id

log = logging.getLogger("portway.access")
SECTION = "access_lists"


def parse(schema: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """Validate `data` with `schema`; pydantic errors become InvalidFields (field → reason)."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InvalidFields(field_errors(exc.errors())) from exc


def _lists(user) -> QuerySet[AccessList]:  # noqa: ANN001
    return visible_queryset(user, SECTION, AccessList.objects.select_related("owner"))


def hosts_using(access_list_id: int) -> QuerySet:
    """Proxy hosts that name the list (enabled or not), ordered by first name (NPM's
    `proxy_host_count` and `?expand=proxy_hosts` count these)."""
    from portway.hosts.models import ProxyHost

    return ProxyHost.objects.filter(access_list_id=access_list_id).order_by("first_domain", "id")


def _kinds_with_access_lists() -> list[type]:
    """The host models that carry `access_list_id` (proxy and redirection hosts)."""
    from portway.hosts.models import HOST_MODELS

    return [
        model
        for model in HOST_MODELS.values()
        if any(f.name == "access_list_id" for f in model._meta.get_fields())
    ]


def every_host_using(access_list_id: int) -> list:
    """Hosts of every kind that name the list (enabled or not): proxy hosts first, then
    redirection hosts, each by first name."""
    found: list = []
    for model in _kinds_with_access_lists():
        found += model.objects.filter(access_list_id=access_list_id).order_by("first_domain", "id")
    return found


def host_counts(ids: list[int], *, every_kind: bool = False) -> dict[int, int]:
    """{access list id: number of hosts using it}: proxy hosts only (NPM's
    `proxy_host_count`), or hosts of every kind with `every_kind`; one query per kind."""
    from portway.hosts.models import ProxyHost

    models = _kinds_with_access_lists() if every_kind else [ProxyHost]
    counts: dict[int, int] = {}
    for model in models:
        rows = (
            model.objects.filter(access_list_id__in=ids)
            .values("access_list_id")
            .annotate(count=Count("id"))
        )
        for row in rows:
            counts[row["access_list_id"]] = counts.get(row["access_list_id"], 0) + row["count"]
    return counts


def list_access_lists(user, query: str | None = None) -> QuerySet[AccessList]:  # noqa: ANN001
    """Lists the user may see, by name; `query` filters by a substring of the name."""
    require(user, SECTION, "view")
    lists = _lists(user)
    if query:
        lists = lists.filter(name__icontains=query.strip())
    return lists.order_by("name", "id")


def get_access_list(user, access_list_id: int) -> AccessList:  # noqa: ANN001
    """One visible list. Raises NotFound."""
    require(user, SECTION, "view")
    found = _lists(user).filter(pk=access_list_id).first()
    if found is None:
        raise NotFound(f"Access list {access_list_id} not found")
    return found


def usable_by(user, access_list_id: int, current: int = 0) -> AccessList:  # noqa: ANN001
    """The list a host of `user` may name (`current`: the one it already names, kept
    even if the user could not pick it now). Raises FieldError on `access_list_id`."""
    lists = AccessList.objects.all()
    if access_list_id != current:
        lists = visible_queryset(user, SECTION, lists)
    found = lists.filter(pk=access_list_id).first()
    if found is None:
        raise FieldError("access_list_id", f"access list {access_list_id} does not exist")
    return found


def _set_items(access_list: AccessList, items: list[dict[str, Any]], *, creating: bool) -> None:
    """Replace the users; an item whose password is empty keeps the stored hash of the same
    username. Raises FieldError naming `items/<i>/password` for a new user without one."""
    stored = {item.username: item for item in access_list.items.all()} if not creating else {}
    kept: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        secret = item.get("password") or ""
        if secret:
            kept.append((item["username"], hash_password(secret)))
        elif item["username"] in stored:
            kept.append((item["username"], stored[item["username"]].password_hash))
        else:
            raise FieldError(f"items/{index}/password", "is required for a new user")
    access_list.items.all().delete()
    AccessListItem.objects.bulk_create(
        AccessListItem(access_list=access_list, username=name, password_hash=hashed)
        for name, hashed in kept
    )


def _set_clients(access_list: AccessList, clients: list[dict[str, Any]]) -> None:
    access_list.clients.all().delete()
    AccessListClient.objects.bulk_create(
        AccessListClient(access_list=access_list, address=c["address"], directive=c["directive"])
        for c in clients
    )


def _gate_users(ids: list[int]) -> list[int]:
    """The ids in order without repeats; each must name an existing user (FieldError
    `portway_users/<i>` otherwise)."""
    from portway.accounts.models import User

    unique = list(dict.fromkeys(ids))
    known = set(User.objects.filter(pk__in=unique).values_list("pk", flat=True))
    for index, user_id in enumerate(ids):
        if user_id not in known:
            raise FieldError(f"portway_users/{index}", f"user {user_id} does not exist")
    return unique


def _apply_fields(access_list: AccessList, values: dict[str, Any], *, creating: bool) -> None:
    for name in ("name", "satisfy_any", "pass_auth", "portway_login"):
        if values.get(name) is not None:
            setattr(access_list, name, values[name])
    if values.get("portway_users") is not None:
        access_list.portway_users = _gate_users(values["portway_users"])
    if values.get("meta") is not None:
        access_list.meta = values["meta"]
    access_list.save()
    if values.get("items") is not None or creating:
        _set_items(access_list, values.get("items") or [], creating=creating)
    if values.get("clients") is not None or creating:
        _set_clients(access_list, values.get("clients") or [])


def audited_fields(access_list: AccessList) -> dict[str, Any]:
    """The list's fields as the audit log compares them: user names, never their hashes."""
    return {
        "name": access_list.name,
        "satisfy_any": access_list.satisfy_any,
        "pass_auth": access_list.pass_auth,
        "portway_login": access_list.portway_login,
        "portway_users": list(access_list.portway_users or []),
        "items": [item.username for item in access_list.items.all()],
        "clients": [f"{c.directive} {c.address}" for c in access_list.clients.all()],
        "meta": access_list.meta or {},
    }


def _audit(
    user,  # noqa: ANN001
    access_list: AccessList,
    action: str,
    before: dict[str, Any] | None = None,
) -> None:
    """Record `action`; created: every field as "after", deleted: as "before"."""
    fields = audited_fields(access_list)
    if action == "created":
        before, after = {}, fields
    elif action == "deleted":
        before, after = fields, {}
    else:
        after = fields
    record(
        user,
        "access-list",
        access_list.pk,
        action,
        before=before,
        after=after,
        name=access_list.name,
    )


def _paths() -> Paths:
    return Paths(Path(settings.DATA_DIR))


def write_user_file(access_list: AccessList, paths: Paths | None = None) -> None:
    """Write (or remove, when it has no users) the list's htpasswd file."""
    paths = paths or _paths()
    target = paths.htpasswd(access_list.pk)
    users = list(access_list.items.values_list("username", "password_hash"))
    if not users:
        target.unlink(missing_ok=True)
        return
    paths.access_dir.mkdir(parents=True, exist_ok=True)
    group = worker_group_id()
    if group is not None:
        import os

        os.chown(paths.access_dir, -1, group)
        os.chmod(paths.access_dir, 0o750)
    else:
        paths.access_dir.chmod(0o700)
    write_private(target, htpasswd_text(users), group)


def write_user_files(paths: Paths) -> None:
    """Bring every list's htpasswd file up to date and remove files of deleted lists
    (the engine calls this before rendering, so a restored database is served right)."""
    wanted = set()
    for access_list in AccessList.objects.prefetch_related("items"):
        write_user_file(access_list, paths)
        wanted.add(paths.htpasswd(access_list.pk).name)
    if paths.access_dir.is_dir():
        for stale in paths.access_dir.glob("*.htpasswd"):
            if stale.name not in wanted:
                stale.unlink(missing_ok=True)


def spec_for(access_list_id: int, paths: Paths) -> AccessSpec | None:
    """The renderer's view of list `access_list_id` (None for 0 or a missing list)."""
    if not access_list_id:
        return None
    found = AccessList.objects.filter(pk=access_list_id).first()
    if found is None:
        return None
    return spec_of(found, paths)


def spec_of(access_list: AccessList, paths: Paths) -> AccessSpec:
    """The renderer's view of `access_list` (its items and clients are read)."""
    has_users = bool(list(access_list.items.all()))  # prefetched by the engine
    return AccessSpec(
        id=access_list.pk,
        satisfy_any=access_list.satisfy_any,
        pass_auth=access_list.pass_auth,
        clients=tuple((c.directive, c.address) for c in access_list.clients.all()),
        user_file=paths.htpasswd(access_list.pk) if has_users else None,
        gate_socket=paths.gate_socket if access_list.portway_login else None,
    )


def _request_apply() -> None:
    from portway.nginx.engine import request_apply

    request_apply()


def create_access_list(user, data: dict[str, Any]) -> AccessList:  # noqa: ANN001
    """Create a list from NPM wire fields. Raises InvalidFields/FieldError/PermissionDenied."""
    require(user, SECTION, "manage")
    payload = parse(AccessListCreate, data).model_dump(exclude_unset=True)
    with transaction.atomic():
        access_list = AccessList(owner=user)
        _apply_fields(access_list, payload, creating=True)
        _audit(user, access_list, "created")
    write_user_file(access_list)
    return access_list


def import_access_list(
    actor,  # noqa: ANN001
    owner,  # noqa: ANN001
    data: dict[str, Any],
    hashes: list[tuple[str, str]],
) -> AccessList:
    """Create a list brought from another installation (the NPM import), keeping its
    users' existing crypt(3) hashes (`$apr1$`, `$2y$`, ... : nginx checks them itself).

    `data`: NPM's wire object without `items`; `hashes`: (username, hash) pairs. The
    htpasswd file is written by the next apply (write_user_files). Raises InvalidFields,
    FieldError (`items/<i>/username`, `items/<i>/password` for an unusable hash).
    """
    require(actor, SECTION, "manage")
    items = [{"username": name, "password": ""} for name, _ in hashes]
    payload = parse(AccessListCreate, {**data, "items": items}).model_dump(exclude_unset=True)
    for index, (_, hashed) in enumerate(hashes):
        if not hashed or any(c in hashed for c in ":\r\n") or not hashed.isprintable():
            raise FieldError(f"items/{index}/password", "the stored hash is not usable")
    with transaction.atomic():
        access_list = AccessList(owner=owner)
        _apply_fields(access_list, {**payload, "items": None}, creating=False)
        AccessListItem.objects.bulk_create(
            AccessListItem(access_list=access_list, username=name, password_hash=hashed)
            for name, hashed in hashes
        )
        _audit(actor, access_list, "created")
    return access_list


def update_access_list(user, access_list_id: int, data: dict[str, Any]) -> AccessList:  # noqa: ANN001
    """Change any subset of a list's fields; every host using it is applied again."""
    require(user, SECTION, "manage")
    if not data:
        raise BadRequest("data must have at least one property")
    payload = parse(AccessListUpdate, data).model_dump(exclude_unset=True)
    with transaction.atomic():
        access_list = get_access_list(user, access_list_id)
        before = audited_fields(access_list)
        _apply_fields(access_list, payload, creating=False)
        _audit(user, access_list, "updated", before)
    from portway.access.gate import policies

    policies.forget(access_list.pk)
    write_user_file(access_list)
    if every_host_using(access_list.pk):
        _request_apply()
    return access_list


def delete_access_list(user, access_list_id: int) -> None:  # noqa: ANN001
    """Delete a list no host uses. Raises Conflict naming the hosts that still use it."""
    require(user, SECTION, "manage")
    with transaction.atomic():
        access_list = get_access_list(user, access_list_id)
        users = every_host_using(access_list.pk)
        if users:
            names = "; ".join(f"{h.LABEL} {h.pk} ({', '.join(h.unicode_names)})" for h in users)
            raise Conflict(f"Access list {access_list.pk} is used by {names}")
        _audit(user, access_list, "deleted")
        list_id = access_list.pk
        access_list.delete()
    _paths().htpasswd(list_id).unlink(missing_ok=True)
