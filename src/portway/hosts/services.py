"""Host operations (every kind: proxy, redirection, 404, stream) shared by the API and the UI.

Each generic function takes the host model (a kind, see portway.hosts.models.HOST_MODELS)
and the acting user, validates at the edge (pydantic schemas built on
portway.core.fields), changes nothing when it raises, and asks the nginx engine to
apply after the change is committed. Errors are portway.core.errors exceptions.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from pydantic import BaseModel, ValidationError

from portway.certificates.models import Certificate
from portway.core import fields
from portway.core.audit import record, snapshot
from portway.core.errors import BadRequest, FieldError, InvalidFields, NotFound, PermissionDenied
from portway.core.validation import field_errors
from portway.hosts.models import HostBase, HostName, ProxyHost, Stream, host_model
from portway.hosts.schemas import (
    DeadHostCreate,
    DeadHostUpdate,
    ProxyHostCreate,
    ProxyHostUpdate,
    RedirectionHostCreate,
    RedirectionHostUpdate,
    StreamCreate,
    StreamUpdate,
)
from portway.nginx.logs import LogLines

log = logging.getLogger("portway.hosts")
APPLY_WAIT_SECONDS = 30  # how long a create/update waits for its change to go live
SERVER_META_KEYS = (
    "nginx_online",
    "nginx_err",
    "nginx_serving_previous",
    "certificate_warnings",
)
# Per kind: permission section, audit object type (NPM's names) and request schemas.
# Tunnel hosts (portway.tunnels) carry TCP services: they share the streams permission.
SECTIONS = {
    "proxy": "proxy_hosts",
    "redirection": "redirection_hosts",
    "dead": "dead_hosts",
    "tunnel": "streams",
    "stream": "streams",
}
AUDIT_TYPES = {
    "proxy": "proxy-host",
    "redirection": "redirection-host",
    "dead": "dead-host",
    "tunnel": "tunnel-host",
    "stream": "stream",
}
SCHEMAS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "proxy": (ProxyHostCreate, ProxyHostUpdate),
    "redirection": (RedirectionHostCreate, RedirectionHostUpdate),
    "dead": (DeadHostCreate, DeadHostUpdate),
    "stream": (StreamCreate, StreamUpdate),
}
HostModel = type[HostBase] | type[Stream]


def _require(model: HostModel, user, level: str) -> None:  # noqa: ANN001
    from portway.accounts.permissions import require

    require(user, SECTIONS[model.KIND], level)


def require_kind(model: HostModel, user, level: str) -> None:  # noqa: ANN001
    """Raise PermissionDenied unless `user` may `level` ("view" or "manage") hosts of the
    kind `model` (its permission section, SECTIONS)."""
    _require(model, user, level)


def _visible(model: HostModel, user, queryset: QuerySet) -> QuerySet:  # noqa: ANN001
    from portway.accounts.permissions import visible_queryset

    return visible_queryset(user, SECTIONS[model.KIND], queryset)


def parse(schema: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """Validate `data` with `schema`; pydantic errors become InvalidFields (field → reason,
    in words a person can act on: see portway.core.validation)."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InvalidFields(field_errors(exc.errors())) from exc


def list_hosts(model: HostModel, user, query: str | None = None) -> QuerySet:  # noqa: ANN001
    """Hosts of one kind the user may see, ordered by first domain name; `query` filters
    by substring of a name (ASCII/punycode or Unicode).

    Streams are ordered by incoming port (NPM's order) and `query` matches a substring of
    the incoming port (NPM) or of the forwarding host.
    """
    _require(model, user, "view")
    hosts = _visible(model, user, model.objects.select_related("certificate", "owner"))
    if model is Stream:
        if query:
            text = query.strip().lower()
            found = Q(forwarding_host__contains=text)
            if text.isascii() and text.isdigit():
                found |= Q(incoming_port__contains=text)
            hosts = hosts.filter(found)
        return hosts.order_by("incoming_port", "id")
    if query:
        # names are stored lowercase, in punycode and in Unicode; one indexed query
        wanted = fields.search_form(query)
        matching = HostName.objects.filter(
            Q(name__contains=query.lower()) | Q(unicode_name__contains=wanted),
            kind=model.KIND,
        )
        hosts = hosts.filter(pk__in=matching.values("host_id"))
    return hosts.order_by("first_domain", "id")


def get_host(model: HostModel, user, host_id: int) -> HostBase:  # noqa: ANN001
    """One visible host of a kind. Raises NotFound, PermissionDenied."""
    _require(model, user, "view")
    host = (
        _visible(model, user, model.objects.select_related("certificate", "owner"))
        .filter(pk=host_id)
        .first()
    )
    if host is None:
        raise NotFound(f"{model.LABEL.capitalize()} {host_id} not found")
    return host


def _save_claiming_names(host: HostBase | Stream, user, **kwargs: Any) -> None:  # noqa: ANN001
    """Save `host` for `user`; its names are claimed in the same transaction (HostName.claim).

    The unique index decides: a name an enabled host of any kind holds makes the save
    fail, and that is reported as the first such name, with the host holding it when
    `user` may see that host (otherwise only that another host holds it: a member learns
    nothing of hosts their permissions hide).

    Raises:
        FieldError: `domain_names/<i>` naming the name and the host (kind and id);
            for a stream `incoming_port`, naming the port, protocol and stream.
    """
    try:
        with transaction.atomic():  # a savepoint: the failed insert is undone alone
            host.save(**kwargs)
    except IntegrityError:
        if isinstance(host, Stream):
            _explain_port_clash(host, user)
            raise
        holders = {
            row.claim: row
            for row in HostName.objects.filter(claim__in=host.domain_names).exclude(
                kind=host.KIND, host_id=host.pk or 0
            )
        }
        for index, name in enumerate(host.domain_names):
            if name in holders:
                holder = holders[name]
                try:
                    model = host_model(holder.kind)
                except KeyError:  # portway.nginx.admin_site's claim
                    model = None
                if model is None:
                    held_by = "Portway's admin UI (Settings, Admin UI domain)"
                elif _visible(model, user, model.objects.filter(pk=holder.host_id)).exists():
                    held_by = f"enabled {model.LABEL} {holder.host_id}"
                else:
                    held_by = "another enabled host, one you cannot see (ask an administrator)"
                raise FieldError(
                    f"domain_names/{index}", f"{name!r} is already used by {held_by}"
                ) from None
        raise


def _explain_port_clash(stream: Stream, user) -> None:  # noqa: ANN001
    """Raise the FieldError of a stream whose port an enabled stream already claims.

    The holder is named to users who may see it, as for names."""
    holders = HostName.objects.filter(claim__in=stream.port_claims).exclude(
        kind=stream.KIND, host_id=stream.pk or 0
    )
    for holder in holders.order_by("claim"):
        protocol = holder.claim.split(":", 1)[0].upper()
        other = _visible(Stream, user, Stream.objects.filter(pk=holder.host_id)).first()
        if other is not None:
            held_by = f"enabled stream {other.pk} ({other})"
        else:
            held_by = "another enabled stream, one you cannot see (ask an administrator)"
        raise FieldError(
            "incoming_port",
            f"port {stream.incoming_port} ({protocol}) is already used by {held_by}",
        )


def _own_port(port: int) -> str | None:
    """Which of Portway's own listeners uses `port`, in words, or None if none does.

    The HTTP and HTTPS ports are nginx's own listeners for every host; the admin port is
    the UI and API. A stream there would take them away (or never bind)."""
    from portway import conf

    config = conf.load()
    owners = {
        config.http_port: "Portway's HTTP port (PORTWAY_HTTP_PORT)",
        config.https_port: "Portway's HTTPS port (PORTWAY_HTTPS_PORT)",
        config.admin_port: "Portway's admin UI and API port (PORTWAY_ADMIN_PORT)",
    }
    return owners.get(port)


def _check_stream(stream: Stream) -> None:
    """A stream's rules beyond each field's own: one protocol at least, not a port of
    Portway's own. Raises FieldError naming the field."""
    if not (stream.tcp_forwarding or stream.udp_forwarding):
        raise FieldError(
            "tcp_forwarding",
            "is off and so is udp_forwarding: a stream forwards TCP, UDP or both; turn "
            "one of them on",
        )
    owner = _own_port(stream.incoming_port)
    if owner:
        raise FieldError(
            "incoming_port", f"port {stream.incoming_port} is {owner}: choose another port"
        )
    _check_stream_loop(stream)


def _this_machine(host: str) -> bool:
    """Whether a forwarding host names this machine, where streams listen: a loopback or
    unspecified address (also IPv4-mapped), `localhost` or a name under it, the proxy's
    bind address, or this machine's own host name. Names that merely resolve here are not
    looked up (no DNS on a save)."""
    import ipaddress
    import socket

    from portway import conf

    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name == socket.gethostname().lower()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return True
    bind = conf.load().bind_address
    try:
        return bind != "" and address == ipaddress.ip_address(bind.strip("[]"))
    except ValueError:
        return False


def _check_stream_loop(stream: Stream) -> None:
    """Refuse a stream whose connections come back to itself: forwarded to its own port on
    this machine, or through other enabled streams of a shared protocol that end there.
    nginx would open connection after connection to itself until it runs out of
    worker_connections, and every host it serves would fail meanwhile. Raises FieldError
    on `forwarding_port`."""
    if not _this_machine(stream.forwarding_host):
        return
    protocols = {
        p for p, on in (("tcp", stream.tcp_forwarding), ("udp", stream.udp_forwarding)) if on
    }
    path = [stream]
    seen = {stream.incoming_port}
    current = stream
    while _this_machine(current.forwarding_host):
        port = current.forwarding_port
        if port == stream.incoming_port:
            through = "".join(f" through stream {s.pk} (port {s.incoming_port})" for s in path[1:])
            raise FieldError(
                "forwarding_port",
                f"{current.forwarding_host}:{port} is this stream's own port on this machine"
                f"{through}: every connection would connect to itself again until nginx "
                "runs out of connections; forward to the service's port instead",
            )
        if port in seen or not stream.enabled:
            return
        seen.add(port)
        following = (
            Stream.objects.filter(enabled=True, incoming_port=port)
            .exclude(pk=stream.pk or 0)
            .first()
        )
        if following is None:
            return
        shared = {
            p
            for p, on in (("tcp", following.tcp_forwarding), ("udp", following.udp_forwarding))
            if on
        }
        protocols &= shared
        if not protocols:
            return
        path.append(following)
        current = following


def _same_text(sent: str | None, stored: str | None) -> bool:
    def plain(text: str | None) -> str:
        # Browsers submit a textarea with CRLF line ends; the text is the same one.
        return (text or "").replace("\r\n", "\n").strip()

    return plain(sent) == plain(stored)


def _check_advanced_config(user, host: HostBase, values: dict[str, Any]) -> None:  # noqa: ANN001
    """Raw nginx text, on the host or on a custom location, is for administrators only.

    A non-admin may leave it out or send back what is already there (the UI and NPM
    clients send the whole object), and may change a location's other fields, but may not
    add, change or clear any of it: not on the host, not on a location, and not by
    removing a location that carries some or changing its path. Locations are matched by
    path, the key nginx uses. Text sent back unchanged is replaced by the stored text in
    `values`, so a round trip through a form never rewrites it.

    Raises:
        PermissionDenied: naming `data/advanced_config`, `data/locations/<i>/advanced_config`
            or `data/locations` (a location carrying advanced_config left out).
    """
    if user.is_admin:
        return
    if "advanced_config" in values:
        if not _same_text(values["advanced_config"], host.advanced_config):
            raise PermissionDenied("data/advanced_config may be changed by administrators only")
        values["advanced_config"] = host.advanced_config or ""
    if "locations" not in values:
        return
    stored = {
        loc.get("path"): loc.get("advanced_config") or ""
        for loc in getattr(host, "locations", None) or []
    }
    sent_paths = set()
    for index, loc in enumerate(values["locations"] or []):
        sent_paths.add(loc.get("path"))
        text = stored.get(loc.get("path"), "")
        if not _same_text(loc.get("advanced_config"), text):
            raise PermissionDenied(
                f"data/locations/{index}/advanced_config may be changed by administrators only"
            )
        loc["advanced_config"] = text
    for path, text in stored.items():
        if text.strip() and path not in sent_paths:
            raise PermissionDenied(
                f"data/locations: the location {path} has advanced_config set by an "
                "administrator; only an administrator may remove it or change its path"
            )


def _certificate(user, host: HostBase, cert_id: int) -> Certificate:  # noqa: ANN001
    """The certificate `cert_id` if the user may use it; FieldError otherwise.

    A user who sees only their own objects may link only their own certificates (or keep
    the one the host already has); others' ids answer as if they did not exist.
    """
    certs = Certificate.objects.all()
    if cert_id != host.certificate_id:
        from portway.accounts.permissions import visible_queryset

        certs = visible_queryset(user, "certificates", certs)
    cert = certs.filter(pk=cert_id).first()
    if cert is None:
        raise FieldError("certificate_id", f"certificate {cert_id} does not exist")
    if not cert.has_files:
        raise FieldError(
            "certificate_id", f"certificate {cert_id} has no certificate files uploaded yet"
        )
    return cert


def _apply_fields(user, host: HostBase, values: dict[str, Any]) -> None:  # noqa: ANN001
    _check_advanced_config(user, host, values)
    if values.get("access_list_id"):
        from portway.access.services import usable_by

        usable_by(user, values["access_list_id"], host.access_list_id)
    if isinstance(host, Stream):
        values.pop("domain_names", None)  # NPM's names for a "new" certificate: not stored
    if "certificate_id" in values:
        cert_id = values.pop("certificate_id")
        if cert_id == "new" and isinstance(host, Stream):
            raise FieldError(
                "certificate_id",
                'cannot be "new" for a stream: it has no domain names to request a '
                "certificate for; request one on the Certificates page and choose it here",
            )
        if cert_id == "new":  # a Let's Encrypt certificate for the host's names, linked once issued
            host._acme_request = {}
        elif cert_id:
            host.certificate = _certificate(user, host, cert_id)
        else:
            host.certificate = None
    if "meta" in values:
        meta = dict(values.pop("meta") or {})
        for key in SERVER_META_KEYS:
            meta.pop(key, None)
        host.meta = meta
    if "locations" in values:
        # exclude_unset drops a location's defaults too: fill them in here.
        values["locations"] = [
            {
                "path": loc["path"],
                "forward_scheme": loc.get("forward_scheme") or "http",
                "forward_host": loc["forward_host"],
                "forward_port": loc["forward_port"],
                "forward_path": loc.get("forward_path") or "",
                "advanced_config": loc.get("advanced_config") or "",
            }
            for loc in values["locations"] or []
        ]
    for name, value in values.items():
        if value is None and name != "advanced_config":
            continue
        setattr(host, name, value if value is not None else "")
    if getattr(host, "_acme_request", None) is not None:
        from portway.certificates.services import prepare_host_request

        host._acme_request = prepare_host_request(host)  # keeps TLS options, drops secrets
    if isinstance(host, Stream):
        _check_stream(host)
        return
    # NPM's rules: each option needs the one before it.
    if host.certificate is None:
        host.ssl_forced = False
        if hasattr(host, "cloudflare_only"):  # a proxy host's option
            host.cloudflare_only = False
        host.http2_support = False
    if not host.ssl_forced:
        host.hsts_enabled = False
    if not host.hsts_enabled:
        host.hsts_subdomains = False


def _request_certificate(user, host: HostBase) -> None:  # noqa: ANN001
    """certificate_id "new": request it now; the host switches to it once it is issued."""
    if getattr(host, "_acme_request", None) is not None:
        from portway.certificates.services import request_for_host

        request_for_host(user, host, host._acme_request)


def _after_change(host: HostBase) -> None:
    """Test the host's config alone (status for the response), then queue a full apply."""
    from portway.nginx.engine import get_engine, request_apply
    from portway.nginx.kinds import spec_of

    if host.enabled:
        engine = get_engine()
        if engine is not None:
            try:
                error = engine.preflight(spec_of(host))
            except Exception:  # the full apply will still judge the host
                log.exception("preflight of %s %s failed to run", host.LABEL, host.pk)
            else:
                online = error is None
                # a rejected edit of a host that is live leaves its last good config live
                previous = not online and engine.has_live_config(host.file_key)
                if online:
                    message = None
                elif previous:
                    message = (
                        "nginx rejected this host's new config; its previous config is still "
                        f"served. nginx said: {error}"
                    )
                else:
                    message = f"nginx rejected this host's config: {error}"
                status = (online, message, previous)
                if (host.nginx_online, host.nginx_err, host.nginx_serving_previous) != status:
                    host.nginx_online, host.nginx_err, host.nginx_serving_previous = status
                    type(host).objects.filter(pk=host.pk).update(
                        nginx_online=online, nginx_err=message, nginx_serving_previous=previous
                    )
    ticket = request_apply()
    if host.enabled and ticket is not None:
        _wait_until_applied(host, ticket)


def _wait_until_applied(host: HostBase, ticket: int) -> None:
    """Give `host` the status the apply covering its change recorded.

    Like NPM, the answer comes once nginx has the change: a host is never reported
    online while the configuration containing it is not live (the engine marks it
    offline when nginx refuses the whole configuration).
    """
    from portway.nginx.engine import wait_applied

    if not wait_applied(ticket, timeout=APPLY_WAIT_SECONDS):
        host.nginx_online = False
        host.nginx_err = "not live yet: nginx is still applying the change"
        return
    status = (
        type(host)
        .objects.filter(pk=host.pk)
        .values_list("nginx_online", "nginx_err", "nginx_serving_previous")
        .first()
    )
    if status is not None:
        host.nginx_online, host.nginx_err, host.nginx_serving_previous = status


def _audit(
    user,  # noqa: ANN001
    host: HostBase | Stream,
    action: str,
    before: dict[str, Any] | None = None,
) -> None:
    """Record `action` with the fields it changed (created: all as "after", deleted: all
    as "before"; `before`: the snapshot taken before an update)."""
    fields = snapshot(host)
    if action == "created":
        before, after = {}, fields
    elif action == "deleted":
        before, after = fields, {}
    else:
        after = fields
    record(
        user,
        AUDIT_TYPES[host.KIND],
        host.pk,
        action,
        before=before,
        after=after,
        **host.audit_meta(),
    )


def create_host(
    model: HostModel,
    user,  # noqa: ANN001
    data: dict[str, Any],
    schema: type[BaseModel] | None = None,
) -> HostBase:
    """Create a host of a kind from NPM wire fields (`schema`: the request schema of a
    kind of another app, e.g. tunnel hosts; this app's kinds have theirs in SCHEMAS).

    Raises:
        InvalidFields, FieldError (400), PermissionDenied (403); nothing is saved then.
    """
    _require(model, user, "manage")
    payload = parse(schema or SCHEMAS[model.KIND][0], data).model_dump(exclude_unset=True)
    with transaction.atomic():
        host = model(owner=user)
        _apply_fields(user, host, payload)
        _save_claiming_names(host, user)
        _request_certificate(user, host)
        _audit(user, host, "created")
    _after_change(host)
    return host


def import_host(
    model: HostModel,
    actor,  # noqa: ANN001
    owner,  # noqa: ANN001
    data: dict[str, Any],
    certificate: Certificate | None = None,
) -> HostBase:
    """Create a host from another installation's row (the NPM import), without applying.

    `data` is NPM's wire object without `certificate_id`; `certificate` (already stored)
    is linked as is. `actor` (an administrator) is checked and audited as for
    create_host; `owner` owns the host. The caller's transaction holds the change and
    queues one apply for everything it imported.

    Raises:
        InvalidFields, FieldError (a name an enabled host already serves: `domain_names/<i>`).
    """
    _require(model, actor, "manage")
    payload = parse(SCHEMAS[model.KIND][0], data).model_dump(exclude_unset=True)
    payload.pop("certificate_id", None)
    with transaction.atomic():
        host = model(owner=owner)
        host.certificate = certificate
        _apply_fields(actor, host, payload)
        _save_claiming_names(host, actor)
        _audit(actor, host, "created")
    return host


def import_stream(
    actor,  # noqa: ANN001
    owner,  # noqa: ANN001
    data: dict[str, Any],
    certificate: Certificate | None = None,
) -> Stream:
    """Create a stream from another installation's row (the NPM import), without applying.

    `data` is NPM's stream object (POST /api/nginx/streams: incoming_port,
    forwarding_host, forwarding_port, tcp_forwarding, udp_forwarding, enabled, meta)
    without `certificate_id`; `certificate` (already stored, with files) terminates TLS
    as it did in NPM. As import_host: `actor` is checked and audited, `owner` owns it,
    the caller's transaction holds it and queues one apply for the whole import.

    Raises:
        InvalidFields, FieldError (`incoming_port`: a port an enabled stream already
        claims for one of its protocols, naming that stream, or one of Portway's own
        ports; `tcp_forwarding`: neither protocol on).
    """
    return import_host(Stream, actor, owner, data, certificate)  # type: ignore[return-value]


def update_host(
    model: HostModel,
    user,  # noqa: ANN001
    host_id: int,
    data: dict[str, Any],
    schema: type[BaseModel] | None = None,
) -> HostBase:
    """Change any subset of a host's fields (at least one). Raises as create_host, and
    NotFound."""
    _require(model, user, "manage")
    if not data:
        raise BadRequest("data must have at least one property")
    payload = parse(schema or SCHEMAS[model.KIND][1], data).model_dump(exclude_unset=True)
    with transaction.atomic():
        host = get_host(model, user, host_id)
        before = snapshot(host)
        _apply_fields(user, host, payload)
        _save_claiming_names(host, user)
        _request_certificate(user, host)
        _audit(user, host, "updated", before)
    _after_change(host)
    return host


def delete_host(model: HostModel, user, host_id: int) -> None:  # noqa: ANN001
    """Delete a host (its names are free at once). Raises NotFound, PermissionDenied."""
    _require(model, user, "manage")
    with transaction.atomic():
        host = get_host(model, user, host_id)
        _audit(user, host, "deleted")
        key = host.file_key
        host.delete()
    from django.conf import settings

    from portway.nginx.engine import request_apply
    from portway.nginx.logs import remove_host_logs
    from portway.nginx.render import Paths

    request_apply()
    remove_host_logs(Paths(settings.DATA_DIR), key)


def set_host_enabled(model: HostModel, user, host_id: int, enabled: bool) -> HostBase:  # noqa: ANN001
    """Enable or disable a host; 400 if it already is, or if its names are now taken."""
    _require(model, user, "manage")
    with transaction.atomic():
        host = get_host(model, user, host_id)
        if host.enabled == enabled:
            raise BadRequest(f"Host is already {'enabled' if enabled else 'disabled'}")
        before = snapshot(host)
        host.enabled = enabled
        if enabled and isinstance(host, Stream):
            _check_stream_loop(host)  # the streams it forwards through may have changed
        _save_claiming_names(host, user, update_fields=["enabled", "modified_on"])
        _audit(user, host, "enabled" if enabled else "disabled", before)
    if enabled:
        _after_change(host)
    else:
        from portway.nginx.engine import request_apply

        request_apply()
    return host


# --- proxy hosts: the names the rest of Portway already uses ------------------------------


def list_proxy_hosts(user, query: str | None = None) -> QuerySet[ProxyHost]:  # noqa: ANN001
    """Proxy hosts the user may see (see list_hosts)."""
    return list_hosts(ProxyHost, user, query)


def get_proxy_host(user, host_id: int) -> ProxyHost:  # noqa: ANN001
    """One visible proxy host. Raises NotFound."""
    return get_host(ProxyHost, user, host_id)


def create_proxy_host(user, data: dict[str, Any]) -> ProxyHost:  # noqa: ANN001
    """Create a proxy host (see create_host)."""
    return create_host(ProxyHost, user, data)


def update_proxy_host(user, host_id: int, data: dict[str, Any]) -> ProxyHost:  # noqa: ANN001
    """Update a proxy host (see update_host)."""
    return update_host(ProxyHost, user, host_id, data)


def delete_proxy_host(user, host_id: int) -> None:  # noqa: ANN001
    """Delete a proxy host (see delete_host)."""
    delete_host(ProxyHost, user, host_id)


def set_enabled(user, host_id: int, enabled: bool) -> ProxyHost:  # noqa: ANN001
    """Enable or disable a proxy host (see set_host_enabled)."""
    return set_host_enabled(ProxyHost, user, host_id, enabled)


def enable_proxy_host(user, host_id: int) -> ProxyHost:  # noqa: ANN001
    return set_enabled(user, host_id, True)


def disable_proxy_host(user, host_id: int) -> ProxyHost:  # noqa: ANN001
    return set_enabled(user, host_id, False)


MAX_LOG_QUERY = 200


def host_log(
    model: HostModel,
    user,  # noqa: ANN001
    host_id: int,
    which: str = "access",
    query: str = "",
    lines: int = 100,
) -> LogLines:
    """The last `lines` lines (1-1000) of a host's nginx access or error log, those
    containing `query` (case-insensitive text, not a pattern) when given.

    Whoever may view the host may read its logs. Raises NotFound, PermissionDenied,
    InvalidFields (`log` not access/error, `query` over 200 characters or with control
    characters).
    """
    from django.conf import settings

    from portway.nginx.logs import LOG_KINDS, host_log_path, read_lines
    from portway.nginx.render import Paths

    host = get_host(model, user, host_id)
    errors = {}
    if which not in LOG_KINDS:
        errors["log"] = "must be access or error"
    if len(query) > MAX_LOG_QUERY:
        errors["query"] = f"must be at most {MAX_LOG_QUERY} characters long"
    elif any(ord(c) < 32 or ord(c) == 127 for c in query):
        errors["query"] = "must not contain control characters such as a line break"
    if errors:
        raise InvalidFields(errors)
    return read_lines(host_log_path(Paths(settings.DATA_DIR), host.file_key, which), lines, query)
