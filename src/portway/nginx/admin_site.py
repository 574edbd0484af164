"""The admin UI on a domain name over HTTPS, served through Portway's own nginx.

Setting `admin-domain` (`/api/settings/admin-domain`, the Settings page):
    value: "off" or a domain name, e.g. "portway.example.com" ("" is taken as "off";
           NPM's setting schema wants a non-empty value)
    meta:  {"certificate_id": id of one of Portway's certificates (with its files)}

When set, the apply engine renders one more server block (`hosts/admin-0.conf`): the name
on the proxy's HTTP and HTTPS ports with that certificate, plain HTTP redirected to
HTTPS (the ACME challenge path excepted, so the certificate can renew), every request
proxied to the admin server's own listener (PORTWAY_ADMIN_BIND, loopback when it listens
on every address). nginx says in `X-Forwarded-Proto` that the browser used HTTPS; the
admin server believes it from its trusted proxies, which include the address it listens
on (portway.core.https), so session and CSRF cookies are Secure there. Port 81 can
then be closed: PORTWAY_ADMIN_BIND=127.0.0.1.

The name is claimed in the one name index (hosts.HostName, kind `admin`) in the same
transaction as the setting, so no host of any kind can take it while it is set, and it
cannot be set while a host serves it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from portway.admin_server import MAX_REQUEST_BODY_BYTES
from portway.core import fields
from portway.core.errors import FieldError, PermissionDenied
from portway.nginx.config import Comment, ConfigFile, d
from portway.nginx.models import Setting
from portway.nginx.render import CertificateRef, Renderer

SETTING_ID = "admin-domain"
OFF = "off"
KIND = "admin"  # the HostName kind of the claimed name
APPLY_WAIT_SECONDS = 30
# The admin UI's live views (logs, certificate progress) hold a request open this long.
READ_TIMEOUT = "300s"


@dataclass(frozen=True)
class AdminSiteSpec:
    """The admin UI's server block as the renderer needs it (SiteSpec's fields)."""

    domain_names: tuple[str, ...]
    certificate: CertificateRef
    upstream_host: str
    upstream_port: int
    id: int = 0
    ssl_forced: bool = True
    hsts_enabled: bool = False
    hsts_subdomains: bool = False
    http2_support: bool = True
    block_exploits: bool = False
    advanced_config: str = ""

    @property
    def key(self) -> str:
        return f"{KIND}-{self.id}"


def get_setting() -> Setting:
    """The `admin-domain` setting (created off on first use)."""
    return Setting.get(SETTING_ID)


def admin_upstream(config: Any) -> str:
    """The address nginx reaches the admin server on: PORTWAY_ADMIN_BIND, or loopback
    when the admin server listens on every address."""
    bind = config.admin_bind
    if not bind or ipaddress.ip_address(bind).is_unspecified:
        return "::1" if bind == "::" else "127.0.0.1"
    return bind


def spec() -> AdminSiteSpec | None:
    """The admin site to render; None when off or its certificate has no files."""
    from portway.certificates.models import Certificate

    setting = get_setting()
    if setting.value in ("", OFF):
        return None
    cert = Certificate.objects.filter(pk=(setting.meta or {}).get("certificate_id")).first()
    if cert is None or not cert.has_files:
        return None
    config = settings.PORTWAY
    return AdminSiteSpec(
        domain_names=(setting.value,),
        certificate=CertificateRef(cert.pk, cert.fullchain_path, cert.key_path),
        upstream_host=admin_upstream(config),
        upstream_port=config.admin_port,
    )


def render(renderer: Renderer, site: AdminSiteSpec) -> ConfigFile:
    """The admin site's server block: the shared head (listeners, certificate, ACME,
    Force SSL), then everything proxied to the admin server."""
    server = renderer.site_head(site)
    host = f"[{site.upstream_host}]" if ":" in site.upstream_host else site.upstream_host
    server.append(
        d(
            "location",
            "/",
            block=[
                # the admin server answers 413 itself above its limit, in its own words
                d("client_max_body_size", MAX_REQUEST_BODY_BYTES + 1),
                # with the port the browser used: Django's CSRF check compares Origin
                # with the Host it sees
                d("proxy_set_header", "Host", "$http_host"),
                d("proxy_set_header", "X-Real-IP", "$remote_addr"),
                d("proxy_set_header", "X-Forwarded-For", "$remote_addr"),
                d("proxy_set_header", "X-Forwarded-Proto", "$scheme"),
                d("proxy_http_version", "1.1"),
                d("proxy_set_header", "Connection", ""),
                d("proxy_read_timeout", READ_TIMEOUT),
                d("proxy_buffering", "off"),
                d("proxy_pass", f"http://{host}:{site.upstream_port}"),
            ],
        )
    )
    return ConfigFile(
        f"hosts/{site.key}.conf",
        [Comment(f"Portway's admin UI: {site.domain_names[0]}"), d("server", block=server)],
        host_key=site.key,
    )


def validate(value: Any, meta: Any) -> dict[str, Any]:
    """The setting's clean `meta` for `value` ("" turns it off).

    Raises:
        FieldError: `value` (not a domain name), `meta` / `meta/certificate_id` (not an
            existing certificate with its files).
    """
    from portway.certificates.models import Certificate

    if not isinstance(value, str):
        raise FieldError("value", "must be a domain name, or empty to turn it off")
    if value.strip().lower() in ("", OFF):
        return {}
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise FieldError("meta", "must be an object")
    unknown = set(meta) - {"certificate_id"}
    if unknown:
        raise FieldError(f"meta/{sorted(unknown)[0]}", "is not a property of this setting")
    certificate_id = meta.get("certificate_id")
    if isinstance(certificate_id, bool) or not isinstance(certificate_id, int):
        raise FieldError("meta/certificate_id", "must be the id of one of Portway's certificates")
    cert = Certificate.objects.filter(pk=certificate_id).first()
    if cert is None:
        raise FieldError("meta/certificate_id", f"certificate {certificate_id} does not exist")
    if not cert.has_files:
        raise FieldError(
            "meta/certificate_id", f"certificate {certificate_id} has no certificate files yet"
        )
    return {"certificate_id": certificate_id}


def clean_domain(value: str) -> str:
    """`value` as a stored domain name (lowercase, punycode). Raises FieldError("value")."""
    if "*" in value:
        raise FieldError("value", "must be one name, not a wildcard")
    try:
        return fields.domain_name(value)
    except ValueError as exc:
        raise FieldError("value", str(exc)) from None


def set_admin_domain(user: Any, value: Any, meta: Any) -> Setting:
    """Serve the admin UI on `value` with certificate `meta.certificate_id` ("off" or ""
    turns it off); admins only. The name is claimed in the name index in the same transaction.
    The answer comes once nginx serves the change (at most APPLY_WAIT_SECONDS).

    Raises:
        PermissionDenied: `user` is not an administrator.
        FieldError: invalid value or meta, or the name is a host's (nothing saved).
    """
    from portway.hosts.models import HostName

    if not user.is_admin:
        raise PermissionDenied("Only administrators may change settings")
    clean_meta = validate(value, meta)
    name = clean_domain(value) if clean_meta else ""
    try:
        with transaction.atomic():
            setting = get_setting()
            HostName.objects.filter(kind=KIND).delete()
            if name:
                HostName.objects.create(
                    kind=KIND,
                    host_id=0,
                    name=name,
                    unicode_name=fields.unicode_name(name),
                    claim=name,
                )
            setting.store(user, name or OFF, clean_meta)
    except IntegrityError:
        raise FieldError(
            "value", f"{name!r} is already used by an enabled host; it cannot be the admin UI's"
        ) from None
    from portway.nginx.engine import request_apply, wait_applied

    wait_applied(request_apply(), timeout=APPLY_WAIT_SECONDS)
    return setting
