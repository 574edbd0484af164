"""An access list as nginx directives (pure: data in, config nodes out).

nginx references:
- https://nginx.org/en/docs/http/ngx_http_access_module.html (allow/deny, first match wins)
- https://nginx.org/en/docs/http/ngx_http_auth_basic_module.html
- https://nginx.org/r/satisfy

The directives go at server level, where every location inherits them (custom locations
and the administrator's own ones included); the HTTP-01 challenge location switches them
off for itself (portway.nginx.render.Renderer._acme_location).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portway.nginx.config import Comment, Directive, Node, d

REALM = "Authorization required"


@dataclass(frozen=True)
class AccessSpec:
    """What the renderer needs of an access list.

    clients: ("allow" | "deny", address) pairs in order; address is a validated IP,
        CIDR or "all".
    user_file: the list's htpasswd file, or None when the list has no users.
    """

    id: int
    satisfy_any: bool
    pass_auth: bool
    clients: tuple[tuple[str, str], ...] = ()
    user_file: Path | None = None

    @property
    def has_users(self) -> bool:
        return self.user_file is not None


@dataclass(frozen=True)
class RealIpSpec:
    """The real-IP setting as the renderer needs it (portway.access.realip): the header
    to read and the trusted sources (CIDRs), in order."""

    header: str
    trusted: tuple[str, ...]


def server_directives(spec: AccessSpec) -> list[Node]:
    """Server-level directives for `spec`.

    Address rules: in order, the first match decides; when any rule allows, addresses no
    rule names are denied (`deny all` closes the list, as NPM does). Users: `auth_basic`
    with the list's file. `satisfy all` needs every check to pass (an address no rule
    names passes the address check of a list of deny rules). `satisfy any` needs one
    explicit pass: an address an `allow` rule names, or valid credentials; an address no
    rule names must give the password (nginx's access module then has no opinion).
    """
    nodes: list[Node] = [Comment(f"Access list {spec.id}")]
    nodes.append(d("satisfy", "any" if spec.satisfy_any else "all"))
    rules = [d(directive, address) for directive, address in spec.clients]
    nodes += rules
    closed = spec.clients and spec.clients[-1][1] == "all"
    if any(directive == "allow" for directive, _ in spec.clients) and not closed:
        nodes.append(d("deny", "all"))
    if spec.user_file is not None:
        nodes.append(d("auth_basic", REALM))
        nodes.append(d("auth_basic_user_file", str(spec.user_file)))
    return nodes


def location_directives(spec: AccessSpec | None) -> list[Directive]:
    """Directives every proxying location repeats: the Authorization header is removed
    before proxying unless `pass_auth` (proxy_set_header is not inherited into a location
    that sets its own, and Portway's locations do)."""
    if spec is None or spec.pass_auth or not spec.has_users:
        return []
    return [d("proxy_set_header", "Authorization", "")]
