"""An access list as nginx directives (pure: data in, config nodes out).

nginx references:
- https://nginx.org/en/docs/http/ngx_http_access_module.html (allow/deny, first match wins)
- https://nginx.org/en/docs/http/ngx_http_auth_basic_module.html
- https://nginx.org/r/satisfy
- https://nginx.org/en/docs/http/ngx_http_auth_request_module.html (the login gate)

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
    gate_socket: Portway's gate socket (portway.gate_server) when the list has the
        Portway login (`portway_login`); None otherwise.
    """

    id: int
    satisfy_any: bool
    pass_auth: bool
    clients: tuple[tuple[str, str], ...] = ()
    user_file: Path | None = None
    gate_socket: Path | None = None

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
    if spec.gate_socket is not None:
        nodes += gate_directives(spec)
    return nodes


GATE_USER = "$portway_gate_user"
GATE_EMAIL = "$portway_gate_email"
GATE_REDIRECT = "$portway_gate_redirect"
GATE_AUTH_PATH = "/.portway/auth"


def gate_directives(spec: AccessSpec) -> list[Node]:
    """The Portway login gate (server level): every request is checked by an
    `auth_request` to Portway's gate socket (portway.access.gate); without a session
    the 401 becomes a 302 to the site's own login page at /.portway/login, which is
    proxied to Portway and, like the HTTP-01 location, never gated itself.

    Under `satisfy any` an `allow` rule's address passes without signing in (nginx runs
    the address check and the subrequest in one access phase and needs one to pass).
    """
    socket = spec.gate_socket
    assert socket is not None
    common = [
        d("proxy_set_header", "Host", "$host"),
        d("proxy_set_header", "X-Portway-Scheme", "$scheme"),
        d("proxy_set_header", "X-Portway-Http-Host", "$http_host"),
        d("proxy_set_header", "X-Real-IP", "$remote_addr"),
        d("proxy_set_header", "X-Forwarded-For", ""),
        d("proxy_set_header", "X-Forwarded-Proto", ""),
    ]
    return [
        Comment("Portway login gate"),
        d("auth_request", GATE_AUTH_PATH),
        d("auth_request_set", GATE_USER, "$upstream_http_x_portway_user"),
        d("auth_request_set", GATE_EMAIL, "$upstream_http_x_portway_email"),
        d("auth_request_set", GATE_REDIRECT, "$upstream_http_x_portway_location"),
        d("error_page", 401, "=302", GATE_REDIRECT),
        d(
            "location",
            "=",
            GATE_AUTH_PATH,
            block=[
                d("internal"),
                d("auth_request", "off"),
                d("proxy_pass", f"http://unix:{socket}:/.portway/auth/{spec.id}"),
                d("proxy_pass_request_body", "off"),
                d("proxy_set_header", "Content-Length", ""),
                d("proxy_set_header", "X-Portway-Uri", "$request_uri"),
                *common,
            ],
        ),
        # the check answers nginx's subrequest only: asked directly, it would tell a
        # visitor which lists admit them and take an X-Portway-Uri of theirs
        d("location", "^~", GATE_AUTH_PATH + "/", block=[d("return", 404)]),
        d(
            "location",
            "^~",
            "/.portway/",
            block=[
                # the login page itself: reachable whatever the list says
                d("auth_request", "off"),
                d("auth_basic", "off"),
                d("allow", "all"),
                d("proxy_pass", f"http://unix:{socket}:"),
                *common,
            ],
        ),
    ]


def location_directives(spec: AccessSpec | None) -> list[Directive]:
    """Directives every proxying location repeats (proxy_set_header is not inherited into
    a location that sets its own, and Portway's locations do).

    The Authorization header is removed before proxying unless `pass_auth`. `Remote-User`
    and `Remote-Email` never come from the client: on a gated host they carry the signed-in
    user (empty, so not sent, for a visitor let in by address), on every other host they
    are removed.
    """
    nodes: list[Directive] = []
    gated = spec is not None and spec.gate_socket is not None
    nodes.append(d("proxy_set_header", "Remote-User", GATE_USER if gated else ""))
    nodes.append(d("proxy_set_header", "Remote-Email", GATE_EMAIL if gated else ""))
    if spec is None or spec.pass_auth or not spec.has_users:
        return nodes
    return [*nodes, d("proxy_set_header", "Authorization", "")]
