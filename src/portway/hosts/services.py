"""Proxy host operations shared by the API and the UI.

Every function takes the acting user, validates at the edge (pydantic schemas built on
portway.core.fields), changes nothing when it raises, and asks the nginx engine to
apply after the change is committed. Errors are portway.core.errors exceptions.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from pydantic import BaseModel, ValidationError

from portway.certificates.models import Certificate
from portway.core import fields
from portway.core.errors import BadRequest, FieldError, InvalidFields, NotFound, PermissionDenied
from portway.core.validation import field_errors
from portway.hosts.models import HostName, ProxyHost
from portway.hosts.schemas import ProxyHostCreate, ProxyHostUpdate
from portway.nginx.models import AuditLogEntry, Setting

log = logging.getLogger("portway.hosts")
APPLY_WAIT_SECONDS = 30  # how long a create/update waits for its change to go live
SERVER_META_KEYS = (
    "nginx_online",
    "nginx_err",
    "nginx_serving_previous",
    "certificate_warnings",
)
SECTION = "proxy_hosts"


def _require(user, level: str) -> None:  # noqa: ANN001
    try:
        from portway.accounts.permissions import require
    except ImportError:  # accounts permissions not installed: admins only
        if not user.is_admin:
            raise PermissionDenied("Permission denied") from None
        return
    require(user, SECTION, level)


def _visible(user, queryset: QuerySet) -> QuerySet:  # noqa: ANN001
    try:
        from portway.accounts.permissions import visible_queryset
    except ImportError:
        return queryset
    return visible_queryset(user, SECTION, queryset)


def parse(schema: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """Validate `data` with `schema`; pydantic errors become InvalidFields (field → reason,
    in words a person can act on: see portway.core.validation)."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InvalidFields(field_errors(exc.errors())) from exc


def list_proxy_hosts(user, query: str | None = None) -> QuerySet[ProxyHost]:  # noqa: ANN001
    """Hosts the user may see, ordered by first domain name; `query` filters by substring."""
    _require(user, "view")
    hosts = _visible(user, ProxyHost.objects.select_related("certificate", "owner"))
    if query:
        # names are stored lowercase, in punycode and in Unicode; one indexed query
        wanted = fields.search_form(query)
        matching = HostName.objects.filter(
            Q(name__contains=query.lower()) | Q(unicode_name__contains=wanted)
        )
        hosts = hosts.filter(pk__in=matching.values("host_id"))
    return hosts.order_by("first_domain", "id")


def get_proxy_host(user, host_id: int) -> ProxyHost:  # noqa: ANN001
    """One visible host. Raises NotFound."""
    _require(user, "view")
    host = (
        _visible(user, ProxyHost.objects.select_related("certificate", "owner"))
        .filter(pk=host_id)
        .first()
    )
    if host is None:
        raise NotFound(f"Proxy host {host_id} not found")
    return host


def _lock_names() -> None:
    """Serialise name checks and writes across connections (a row lock on the setting)."""
    Setting.get("default-site")
    list(Setting.objects.select_for_update().filter(id="default-site"))


def _check_names_free(names: list[str], exclude_id: int | None) -> None:
    """Raise FieldError for the first name an other enabled host already serves.

    Names are stored normalised (lowercase, no trailing dot), so equality is the
    case-insensitive comparison NPM users expect; one indexed query whatever the count.
    """
    clashes = HostName.objects.filter(name__in=names, host__enabled=True)
    if exclude_id is not None:
        clashes = clashes.exclude(host_id=exclude_id)
    taken = dict(clashes.values_list("name", "host_id"))
    for index, name in enumerate(names):
        if name in taken:
            raise FieldError(
                f"domain_names/{index}",
                f"{name!r} is already used by enabled proxy host {taken[name]}",
            )


def _same_text(sent: str | None, stored: str | None) -> bool:
    def plain(text: str | None) -> str:
        # Browsers submit a textarea with CRLF line ends; the text is the same one.
        return (text or "").replace("\r\n", "\n").strip()

    return plain(sent) == plain(stored)


def _check_advanced_config(user, host: ProxyHost, values: dict[str, Any]) -> None:  # noqa: ANN001
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
    stored = {loc.get("path"): loc.get("advanced_config") or "" for loc in host.locations or []}
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


def _certificate(user, host: ProxyHost, cert_id: int) -> Certificate:  # noqa: ANN001
    """The certificate `cert_id` if the user may use it; FieldError otherwise.

    A user who sees only their own objects may link only their own certificates (or keep
    the one the host already has); others' ids answer as if they did not exist.
    """
    certs = Certificate.objects.all()
    if cert_id != host.certificate_id:
        try:
            from portway.accounts.permissions import visible_queryset
        except ImportError:
            pass
        else:
            certs = visible_queryset(user, "certificates", certs)
    cert = certs.filter(pk=cert_id).first()
    if cert is None:
        raise FieldError("certificate_id", f"certificate {cert_id} does not exist")
    if not cert.has_files:
        raise FieldError(
            "certificate_id", f"certificate {cert_id} has no certificate files uploaded yet"
        )
    return cert


def _apply_fields(user, host: ProxyHost, values: dict[str, Any]) -> None:  # noqa: ANN001
    _check_advanced_config(user, host, values)
    if values.get("access_list_id"):
        from portway.access.services import usable_by

        usable_by(user, values["access_list_id"], host.access_list_id)
    if "certificate_id" in values:
        cert_id = values.pop("certificate_id")
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
    # NPM's rules: each option needs the one before it.
    if host.certificate is None:
        host.ssl_forced = False
        host.cloudflare_only = False
        host.http2_support = False
    if not host.ssl_forced:
        host.hsts_enabled = False
    if not host.hsts_enabled:
        host.hsts_subdomains = False


def _request_certificate(user, host: ProxyHost) -> None:  # noqa: ANN001
    """certificate_id "new": request it now; the host switches to it once it is issued."""
    if getattr(host, "_acme_request", None) is not None:
        from portway.certificates.services import request_for_host

        request_for_host(user, host, host._acme_request)


def _after_change(host: ProxyHost) -> None:
    """Test the host's config alone (status for the response), then queue a full apply."""
    from portway.nginx.engine import get_engine, request_apply, spec_from_host

    if host.enabled:
        engine = get_engine()
        if engine is not None:
            try:
                error = engine.preflight(spec_from_host(host))
            except Exception:  # the full apply will still judge the host
                log.exception("preflight of proxy host %s failed to run", host.pk)
            else:
                online = error is None
                # a rejected edit of a host that is live leaves its last good config live
                previous = not online and engine.has_live_config(f"proxy-{host.pk}")
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
                    ProxyHost.objects.filter(pk=host.pk).update(
                        nginx_online=online, nginx_err=message, nginx_serving_previous=previous
                    )
    ticket = request_apply()
    if host.enabled and ticket is not None:
        _wait_until_applied(host, ticket)


def _wait_until_applied(host: ProxyHost, ticket: int) -> None:
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
        ProxyHost.objects.filter(pk=host.pk)
        .values_list("nginx_online", "nginx_err", "nginx_serving_previous")
        .first()
    )
    if status is not None:
        host.nginx_online, host.nginx_err, host.nginx_serving_previous = status


def _audit(user, host: ProxyHost, action: str) -> None:  # noqa: ANN001
    AuditLogEntry.objects.create(
        user=user,
        object_type="proxy-host",
        object_id=host.pk,
        action=action,
        meta={"domain_names": host.domain_names},
    )


def create_proxy_host(user, data: dict[str, Any]) -> ProxyHost:  # noqa: ANN001
    """Create a host from NPM wire fields. Raises InvalidFields/FieldError/PermissionDenied."""
    _require(user, "manage")
    payload = parse(ProxyHostCreate, data).model_dump(exclude_unset=True)
    with transaction.atomic():
        _lock_names()
        host = ProxyHost(owner=user)
        _apply_fields(user, host, payload)
        if host.enabled:
            _check_names_free(host.domain_names, None)
        host.save()
        _request_certificate(user, host)
        _audit(user, host, "created")
    _after_change(host)
    return host


def update_proxy_host(user, host_id: int, data: dict[str, Any]) -> ProxyHost:  # noqa: ANN001
    """Change any subset of a host's fields (at least one)."""
    _require(user, "manage")
    if not data:
        raise BadRequest("data must have at least one property")
    payload = parse(ProxyHostUpdate, data).model_dump(exclude_unset=True)
    with transaction.atomic():
        _lock_names()
        host = get_proxy_host(user, host_id)
        _apply_fields(user, host, payload)
        if host.enabled:
            _check_names_free(host.domain_names, host.pk)
        host.save()
        _request_certificate(user, host)
        _audit(user, host, "updated")
    _after_change(host)
    return host


def delete_proxy_host(user, host_id: int) -> None:  # noqa: ANN001
    _require(user, "manage")
    with transaction.atomic():
        host = get_proxy_host(user, host_id)
        _audit(user, host, "deleted")
        host.delete()
    from portway.nginx.engine import request_apply

    request_apply()


def set_enabled(user, host_id: int, enabled: bool) -> ProxyHost:  # noqa: ANN001
    """Enable or disable a host; 400 if it already is, or if its names are now taken."""
    _require(user, "manage")
    with transaction.atomic():
        _lock_names()
        host = get_proxy_host(user, host_id)
        if host.enabled == enabled:
            raise BadRequest(f"Host is already {'enabled' if enabled else 'disabled'}")
        if enabled:
            _check_names_free(host.domain_names, host.pk)
        host.enabled = enabled
        host.save(update_fields=["enabled", "modified_on"])
        _audit(user, host, "enabled" if enabled else "disabled")
    if enabled:
        _after_change(host)
    else:
        from portway.nginx.engine import request_apply

        request_apply()
    return host


def enable_proxy_host(user, host_id: int) -> ProxyHost:  # noqa: ANN001
    return set_enabled(user, host_id, True)


def disable_proxy_host(user, host_id: int) -> ProxyHost:  # noqa: ANN001
    return set_enabled(user, host_id, False)
