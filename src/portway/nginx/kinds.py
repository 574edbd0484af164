"""The fixed registry of host kinds the engine serves: one entry per kind.

The engine knows no kind: it asks this registry for the enabled rows (load), turns each
into a renderer spec (spec), renders it (render) into `hosts/<prefix>-<id>.conf`, and
writes the outcome back through the kind's model (record). Adding a kind is one entry
here, one renderer module and one model; no plugin system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from portway.access.render import AccessSpec
from portway.nginx.config import ConfigFile
from portway.nginx.render import (
    CertificateRef,
    LocationSpec,
    Paths,
    ProxyHostSpec,
    Renderer,
    SiteSpec,
)
from portway.nginx.render_dead import DeadHostSpec, render_dead_host
from portway.nginx.render_redirection import RedirectionHostSpec, render_redirection_host
from portway.nginx.render_stream import StreamSpec, render_stream
from portway.nginx.render_tunnel import TunnelHostSpec, render_tunnel_host


def _certificate(host: Any) -> CertificateRef | None:
    cert = host.certificate
    return None if cert is None else CertificateRef(cert.pk, cert.fullchain_path, cert.key_path)


def _tls(host: Any, ref: CertificateRef | None) -> dict[str, Any]:
    """The TLS options every kind shares (NPM's rules: no certificate, no TLS options)."""
    return {
        "certificate": ref,
        "ssl_forced": host.ssl_forced and ref is not None,
        "hsts_enabled": host.hsts_enabled,
        "hsts_subdomains": host.hsts_subdomains,
        "http2_support": host.http2_support and ref is not None,
        "block_exploits": host.block_exploits,
        "advanced_config": host.advanced_config or "",
    }


def origin_pull_ca() -> Path | None:
    """Cloudflare's origin-pull CA: the administrator's file in the data directory
    (`cloudflare-origin-pull-ca.pem`, replaces the shipped one) or the one shipped in
    portway/access/data; None when neither exists."""
    for candidate in (
        Path(settings.DATA_DIR) / "cloudflare-origin-pull-ca.pem",
        Path(__file__).resolve().parent.parent
        / "access"
        / "data"
        / "cloudflare-origin-pull-ca.pem",
    ):
        if candidate.is_file():
            return candidate
    return None


def proxy_spec(host: Any, access: AccessSpec | None = None) -> ProxyHostSpec:
    """The renderer's view of a hosts.ProxyHost row (certificate loaded or None).

    `access`: the host's access list as the renderer needs it; read from the database
    when not given.
    """
    if access is None and host.access_list_id:
        from portway.access.services import spec_for

        access = spec_for(host.access_list_id, Paths(Path(settings.DATA_DIR)))
    ref = _certificate(host)
    return ProxyHostSpec(
        id=host.pk,
        domain_names=tuple(host.domain_names),
        forward_scheme=host.forward_scheme,
        forward_host=host.forward_host,
        forward_port=host.forward_port,
        caching_enabled=host.caching_enabled,
        allow_websocket_upgrade=host.allow_websocket_upgrade,
        trust_forwarded_proto=host.trust_forwarded_proto,
        cloudflare_only=host.cloudflare_only and ref is not None,
        origin_pull_ca=origin_pull_ca() if host.cloudflare_only else None,
        access=access,
        locations=tuple(
            LocationSpec(
                path=loc["path"],
                forward_scheme=loc.get("forward_scheme", "http"),
                forward_host=loc["forward_host"],
                forward_port=int(loc["forward_port"]),
                forward_path=loc.get("forward_path") or "",
                advanced_config=loc.get("advanced_config") or "",
            )
            for loc in host.locations or []
        ),
        **_tls(host, ref),
    )


def redirection_spec(host: Any, access: AccessSpec | None = None) -> RedirectionHostSpec:
    """The renderer's view of a hosts.RedirectionHost row (`access`: its access list, read
    from the database when not given)."""
    if access is None and host.access_list_id:
        from portway.access.services import spec_for

        access = spec_for(host.access_list_id, Paths(Path(settings.DATA_DIR)))
    return RedirectionHostSpec(
        id=host.pk,
        domain_names=tuple(host.domain_names),
        forward_http_code=host.forward_http_code,
        forward_scheme=host.forward_scheme,
        forward_domain_name=host.forward_domain_name,
        preserve_path=host.preserve_path,
        access=access,
        **_tls(host, _certificate(host)),
    )


def dead_spec(host: Any, access: AccessSpec | None = None) -> DeadHostSpec:
    """The renderer's view of a hosts.DeadHost row (a 404 host has no access list)."""
    return DeadHostSpec(
        id=host.pk, domain_names=tuple(host.domain_names), **_tls(host, _certificate(host))
    )


def tunnel_spec(host: Any, access: AccessSpec | None = None) -> TunnelHostSpec:
    """The renderer's view of a tunnels.Tunnel row (no access list: the tunnel service
    authenticates every connection itself)."""
    passthrough = bool(getattr(host, "passthrough", False))
    # a passthrough host serves the target's certificate, never one of Portway's
    tls = _tls(host, None if passthrough else _certificate(host))
    tls.pop("advanced_config")
    return TunnelHostSpec(
        id=host.pk,
        domain_names=tuple(host.domain_names),
        socket=Paths(Path(settings.DATA_DIR)).tunnel_socket,
        passthrough=passthrough,
        forward_host=host.forward_host,
        forward_port=host.forward_port,
        proxy_protocol=passthrough and host.proxy_protocol,
        **tls,
    )


def stream_spec(stream: Any, access: AccessSpec | None = None) -> StreamSpec:
    """The renderer's view of a hosts.Stream row (streams have no access list)."""
    return StreamSpec(
        id=stream.pk,
        incoming_port=stream.incoming_port,
        forwarding_host=stream.forwarding_host,
        forwarding_port=stream.forwarding_port,
        tcp_forwarding=stream.tcp_forwarding,
        udp_forwarding=stream.udp_forwarding,
        certificate=_certificate(stream),
    )


@dataclass(frozen=True)
class SiteKind:
    """One host kind as the engine sees it.

    prefix: the file key prefix (`hosts/<prefix>-<id>.conf`), the model's KIND.
    model: the Django model label ("hosts.ProxyHost"), resolved when used so that this
        module imports no app.
    spec: (row, its access list's AccessSpec or None) → renderer spec.
    render: (renderer, spec) → the host's ConfigFile.
    context: the nginx context its files are included in: "http" or "stream".
    """

    prefix: str
    model: str
    spec: Callable[[Any, AccessSpec | None], SiteSpec]
    render: Callable[[Renderer, Any], ConfigFile]
    context: str = "http"

    def rows(self) -> Any:
        """The kind's model manager."""
        from django.apps import apps

        return apps.get_model(self.model).objects


KINDS: tuple[SiteKind, ...] = (
    SiteKind("proxy", "hosts.ProxyHost", proxy_spec, Renderer.proxy_host),
    SiteKind("redirection", "hosts.RedirectionHost", redirection_spec, render_redirection_host),
    SiteKind("dead", "hosts.DeadHost", dead_spec, render_dead_host),
    SiteKind("tunnel", "tunnels.Tunnel", tunnel_spec, render_tunnel_host),
    SiteKind("stream", "hosts.Stream", stream_spec, render_stream, context="stream"),
)
_BY_PREFIX = {kind.prefix: kind for kind in KINDS}


def prefixes(context: str) -> tuple[str, ...]:
    """The file key prefixes of the kinds whose files go into nginx's `context`."""
    return tuple(kind.prefix for kind in KINDS if kind.context == context)


def kind_of_key(key: str) -> SiteKind:
    """The kind of a file key (`dead-3` → the 404 host kind). Raises KeyError."""
    return _BY_PREFIX[key.rsplit("-", 1)[0]]


def spec_of(host: Any, access: AccessSpec | None = None) -> SiteSpec:
    """The renderer spec of any host row (its model's KIND picks the kind)."""
    return _BY_PREFIX[host.KIND].spec(host, access)


def render(renderer: Renderer, spec: SiteSpec) -> ConfigFile:
    """Render any kind's spec into its host file (the admin UI's site included: it is
    rendered, tested and isolated like a host, but has no row to record its outcome in)."""
    from portway.nginx import admin_site

    if isinstance(spec, admin_site.AdminSiteSpec):
        return admin_site.render(renderer, spec)
    return kind_of_key(spec.key).render(renderer, spec)
