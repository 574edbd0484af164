"""Render a 404 host (NPM's "dead host"): its names, its certificate, and 404 for every
request, built from the shared server head (portway.nginx.render.Renderer)."""

from __future__ import annotations

from dataclasses import dataclass

from portway.nginx.config import Comment, ConfigFile, d
from portway.nginx.render import CertificateRef, Renderer, claims_root_location


@dataclass(frozen=True)
class DeadHostSpec:
    """A validated 404 host, decoupled from the ORM."""

    id: int
    domain_names: tuple[str, ...]
    certificate: CertificateRef | None = None
    ssl_forced: bool = False
    hsts_enabled: bool = False
    hsts_subdomains: bool = False
    http2_support: bool = False
    block_exploits: bool = False
    advanced_config: str = ""

    @property
    def key(self) -> str:
        return f"dead-{self.id}"


def render_dead_host(renderer: Renderer, host: DeadHostSpec) -> ConfigFile:
    """The server block of one 404 host (`hosts/dead-<id>.conf`)."""
    server = renderer.site_head(host)
    server += renderer.site_advanced(host)
    if not claims_root_location(host.advanced_config):
        server.append(d("location", "/", block=[d("return", 404)]))
    return ConfigFile(
        f"hosts/{host.key}.conf",
        [
            Comment(f"404 host {host.id}: {' '.join(host.domain_names)}"),
            d("server", block=server),
        ],
        host_key=host.key,
    )
