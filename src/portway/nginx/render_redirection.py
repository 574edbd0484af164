"""Render a redirection host: every request answered with a redirect (NPM's
"redirection host"), built from the shared server head (portway.nginx.render.Renderer).

`return <code> <scheme>://<forward_domain_name>[$request_uri]` (https://nginx.org/r/return)
sits in `location /`, so the ACME challenge location and the server-level rules (block
exploits, Force SSL) run first, as for a proxy host.
"""

from __future__ import annotations

from dataclasses import dataclass

from portway.nginx.config import Comment, ConfigFile, d
from portway.nginx.render import CertificateRef, Renderer, claims_root_location


@dataclass(frozen=True)
class RedirectionHostSpec:
    """A validated redirection host, decoupled from the ORM.

    `forward_scheme` is "auto" (the request's scheme), "http" or "https";
    `forward_domain_name` is `host[:port][/path]` as portway.core.fields.redirect_target
    returns it; `forward_http_code` is 300-308.
    """

    id: int
    domain_names: tuple[str, ...]
    forward_http_code: int
    forward_scheme: str
    forward_domain_name: str
    preserve_path: bool = False
    certificate: CertificateRef | None = None
    ssl_forced: bool = False
    hsts_enabled: bool = False
    hsts_subdomains: bool = False
    http2_support: bool = False
    block_exploits: bool = False
    advanced_config: str = ""

    @property
    def key(self) -> str:
        return f"redirection-{self.id}"

    @property
    def target(self) -> str:
        """The redirect's Location: nginx variables only where Portway puts them."""
        scheme = "$scheme" if self.forward_scheme == "auto" else self.forward_scheme
        path = "$request_uri" if self.preserve_path else ""
        return f"{scheme}://{self.forward_domain_name}{path}"


def render_redirection_host(renderer: Renderer, host: RedirectionHostSpec) -> ConfigFile:
    """The server block of one redirection host (`hosts/redirection-<id>.conf`)."""
    server = renderer.site_head(host)
    server += renderer.site_advanced(host)
    if not claims_root_location(host.advanced_config):
        server.append(d("location", "/", block=[d("return", host.forward_http_code, host.target)]))
    return ConfigFile(
        f"hosts/{host.key}.conf",
        [
            Comment(f"Redirection host {host.id}: {' '.join(host.domain_names)}"),
            d("server", block=server),
        ],
        host_key=host.key,
    )
