"""Render a redirection host: every request answered with a redirect (NPM's
"redirection host"), built from the shared server head (portway.nginx.render.Renderer).

`return <code> <scheme>://<forward_domain_name>[$request_uri]` (https://nginx.org/r/return)
sits in `location /`, so the ACME challenge location and the server-level rules (block
exploits, Force SSL) run first, as for a proxy host.

With an access list the redirect must wait for it: `return` runs in nginx's rewrite
phase, before the access phase where `allow`/`deny` and `auth_basic` decide
(https://nginx.org/en/docs/dev/development_guide.html#http_phases), so a `return` in
`location /` would redirect everyone. There `location /` only has `try_files` (its phase
comes after access) falling back to a named location that redirects; the file it tries
never exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from portway.access.render import AccessSpec
from portway.nginx.config import Comment, ConfigFile, Node, d
from portway.nginx.render import CertificateRef, Renderer, claims_root_location

REDIRECT_LOCATION = "@portway_redirect"
# try_files's first candidate: a name nothing creates, so the named location always answers
NO_SUCH_FILE = "/.portway-redirect-after-access-check"


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
    # the host's access list (None: anyone is redirected)
    access: AccessSpec | None = None

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
        server += _redirect_locations(host)
    return ConfigFile(
        f"hosts/{host.key}.conf",
        [
            Comment(f"Redirection host {host.id}: {' '.join(host.domain_names)}"),
            d("server", block=server),
        ],
        host_key=host.key,
    )


def _redirect_locations(host: RedirectionHostSpec) -> list[Node]:
    """`location /` answering with the redirect; after the access list's checks when the
    host has one (see the module's docstring)."""
    redirect = d("return", host.forward_http_code, host.target)
    if host.access is None:
        return [d("location", "/", block=[redirect])]
    return [
        d("location", "/", block=[d("try_files", NO_SUCH_FILE, REDIRECT_LOCATION)]),
        d("location", REDIRECT_LOCATION, block=[redirect]),
    ]
