"""The SNI front: TLS passthrough on the HTTPS port for passthrough tunnel hosts.

Only while at least one enabled tunnel host has `passthrough`, the HTTPS port belongs to
a `stream` server that reads the TLS ClientHello's SNI name without terminating TLS
(https://nginx.org/en/docs/stream/ngx_stream_ssl_preread_module.html) and forwards the
raw connection by name (`map $ssl_preread_server_name`):

    client ─TLS─▶ stream :443 (ssl_preread) ─┬─▶ passthrough target (PROXY protocol on)
                                              ├─▶ passthrough.sock ─▶ target (PROXY off)
                                              └─▶ https.sock ─▶ http context's HTTPS servers

Every connection leaves the front with a PROXY protocol v1 header carrying the client's
address (`proxy_protocol` is one switch per stream server). The http context's HTTPS
servers listen on unix sockets in the run directory with `proxy_protocol`
(`Listeners.https_socket`), so certificates by SNI, HTTP/2, WebSockets and access lists
work as before. A target that does not speak the PROXY protocol (most TLS servers) is
reached through one more stream server that reads the header (its log gets the client's
address) and connects without it.

The client's address on the http side. nginx's realip module changes the address once
per request, from one source per server: the PROXY header *or* a header such as
X-Forwarded-For (https://nginx.org/r/real_ip_header; a second `real_ip_header` in a
location does not run after the first one matched). So:

- real-IP setting off: `set_real_ip_from unix:` and `real_ip_header proxy_protocol` in
  the http context: every HTTPS request gets the front's client address; plain HTTP
  (TCP, not from a unix socket) keeps the connection's address.
- real-IP setting on (trusted proxies, e.g. Cloudflare): the front sorts connections by
  their source (`geo`). Those from a trusted proxy go to `https.sock`, whose servers keep
  the setting's header (`set_real_ip_from unix:` joins the trusted sources: only the
  front's trusted-proxy connections arrive there). Everyone else goes to
  `https-direct.sock`, served by a copy of each HTTPS server block ("twin") whose own
  realip reads the PROXY header. The copies cost memory (each TLS host twice), never a
  request's time.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from portway.access.render import RealIpSpec
from portway.nginx.config import Comment, ConfigFile, Directive, MapEntry, Node, d
from portway.nginx.render import (
    Listeners,
    Renderer,
    _real_ip_directives,
    names_hash_bucket_size,
)

FRONT_FILE = "front.conf"  # in the generation directory, included in the stream context
ACCESS_LOG = "passthrough_access.log"  # in the logs directory: one line per connection
# how long a passthrough connection (and one through the front) may be idle both ways;
# the WebSocket tunnels ping every 30 s, HTTP keep-alive ends after 65 s
PASSTHROUGH_IDLE_TIMEOUT = "1h"
# map keys nginx reads as parameters; a name spelled so is escaped with "\"
_MAP_KEYWORDS = frozenset({"default", "hostnames", "include", "volatile"})


@dataclass(frozen=True)
class Passthrough:
    """One passthrough tunnel host: its names and target (host as validated: IPv6
    unbracketed; port 1-65535), and whether the target receives the PROXY header."""

    id: int
    domain_names: tuple[str, ...]
    forward_host: str
    forward_port: int
    proxy_protocol: bool = False

    @property
    def key(self) -> str:
        """The tunnel host's file key (its http-context file, `hosts/<key>.conf`)."""
        return f"tunnel-{self.id}"

    @property
    def address(self) -> str:
        """`host:port` as nginx reads it (IPv6 bracketed)."""
        host = f"[{self.forward_host}]" if ":" in self.forward_host else self.forward_host
        return f"{host}:{self.forward_port}"

    @property
    def upstream(self) -> str:
        """The `upstream` block for a target name that resolved at apply time."""
        return f"portway_passthrough_{self.id}"


@dataclass(frozen=True)
class FrontPlan:
    """The front of one generation: the passthrough hosts and the sockets.

    `trusted`: the real-IP setting's trusted sources when it is on (then the direct
    clients' servers are twins, see the module docstring), else empty.
    """

    passthroughs: tuple[Passthrough, ...]
    directory: Path
    trusted: tuple[str, ...] = ()

    @property
    def https_socket(self) -> Path:
        """The http context's HTTPS servers (trusted proxies' only, with `trusted`)."""
        return self.directory / "https.sock"

    @property
    def direct_socket(self) -> Path:
        """With `trusted`: the twins, for every client that is no trusted proxy."""
        return self.directory / "https-direct.sock"

    @property
    def passthrough_socket(self) -> Path:
        """The hop that drops the PROXY header before a target that does not take it."""
        return self.directory / "passthrough.sock"

    @property
    def mode(self) -> str:
        """What the http side's listen lines look like under this plan: `front` or
        `front+twins` (host files rendered under another mode listen elsewhere)."""
        return "front+twins" if self.trusted else "front"

    def serving(self, keys: Iterable[str]) -> FrontPlan:
        """This plan with only the passthrough hosts whose files are served (`keys`): a
        host nginx rejected takes its routes out with it, while the listen mode, which
        every host's file was rendered for, stays."""
        wanted = set(keys)
        kept = tuple(p for p in self.passthroughs if p.key in wanted)
        return dataclasses.replace(self, passthroughs=kept)

    def listeners(self, plain: Listeners) -> Listeners:
        """`plain` with the HTTPS servers moved onto the front's socket."""
        return dataclasses.replace(plain, https_socket=self.https_socket)


def front_directory(run: Path) -> Path:
    """Where the front's sockets live: a directory of the run directory that nginx's
    workers may traverse (they connect to the sockets; nginx makes them 0666)."""
    return run / "front"


def plan(
    passthroughs: Iterable[Passthrough], run: Path, real_ip: RealIpSpec | None
) -> FrontPlan | None:
    """The front for these passthrough hosts, or None when there is none (then the
    HTTPS port is the http context's own, as without this module)."""
    found = tuple(passthroughs)
    if not found:
        return None
    trusted = real_ip.trusted if real_ip is not None else ()
    return FrontPlan(found, front_directory(run), tuple(trusted))


def mode_of(front: FrontPlan | None) -> str:
    """`plain` without a front, else FrontPlan.mode."""
    return "plain" if front is None else front.mode


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _key(name: str) -> str:
    return f"\\{name}" if name in _MAP_KEYWORDS else name


def render_front(renderer: Renderer, front: FrontPlan) -> ConfigFile:
    """`front.conf` (stream context): the SNI map(s), the server on the HTTPS port, and
    the hop for targets without the PROXY protocol.

    The mode is written first (`# mode: ...`) so an apply can tell which listen lines
    the live generation's host files have (see portway.nginx.engine).
    """
    https_default = f"unix:{front.https_socket}"
    nodes: list[Node] = [
        Comment(f"mode: {front.mode}"),
        Comment("SNI front: the HTTPS port, passthrough tunnel hosts by name"),
    ]
    longest = max((len(name) for p in front.passthroughs for name in p.domain_names), default=1)
    nodes += [
        d("map_hash_bucket_size", names_hash_bucket_size(longest)),
        d("map_hash_max_size", max(2048, 4 * sum(len(p.domain_names) for p in front.passthroughs))),
    ]
    if front.trusted:
        # trusted proxies keep their header (https.sock); everyone else's address is the
        # PROXY header's (the twins on https-direct.sock)
        https_default = "$portway_https_route"
        nodes.append(
            d(
                "geo",
                "$portway_https_route",
                block=[
                    MapEntry("default", f"unix:{front.direct_socket}"),
                    *(MapEntry(cidr, f"unix:{front.https_socket}") for cidr in front.trusted),
                ],
            )
        )
    routes: list[Node] = [d("hostnames"), MapEntry("default", https_default)]
    targets: list[Node] = [d("hostnames")]
    logged: list[Node] = [d("hostnames"), MapEntry("default", "0")]
    hop = f"unix:{front.passthrough_socket}"
    for passthrough in front.passthroughs:
        target = passthrough.address
        if _is_ip(passthrough.forward_host):
            pass
        elif renderer.resolver.resolvable(passthrough.forward_host):
            # resolved once at load, /etc/hosts included; a variable `proxy_pass` finds
            # the block by its name
            target = passthrough.upstream
            nodes.append(d("upstream", target, block=[d("server", passthrough.address)]))
        else:
            nodes.append(
                Comment(
                    f"{passthrough.forward_host} did not resolve at apply time: resolved per "
                    "connection"
                )
            )
        for name in passthrough.domain_names:
            logged.append(MapEntry(_key(name), "1"))
            if passthrough.proxy_protocol:
                routes.append(MapEntry(_key(name), target))
            else:
                routes.append(MapEntry(_key(name), hop))
                targets.append(MapEntry(_key(name), target))
    nodes.append(d("map", "$ssl_preread_server_name", "$portway_sni_route", block=routes))
    # passthrough connections only (HTTPS requests are in their hosts' logs); the name is
    # the client's and escaped as such
    nodes.append(d("map", "$ssl_preread_server_name", "$portway_sni_logged", block=logged))
    nodes.append(
        d(
            "log_format",
            "portway_passthrough",
            "escape=default",
            '$remote_addr [$time_local] "$ssl_preread_server_name" $upstream_addr $status '
            "$bytes_received $bytes_sent $session_time",
        )
    )
    nodes.append(
        d(
            "server",
            block=[
                *(d("listen", address) for address in renderer.listeners.https),
                d("ssl_preread", "on"),
                d("proxy_pass", "$portway_sni_route"),
                d("proxy_protocol", "on"),
                d("proxy_timeout", PASSTHROUGH_IDLE_TIMEOUT),
                d(
                    "access_log",
                    renderer.paths.logs / ACCESS_LOG,
                    "portway_passthrough",
                    "if=$portway_sni_logged",
                ),
            ],
        )
    )
    if len(targets) > 1:
        nodes.append(d("map", "$ssl_preread_server_name", "$portway_sni_target", block=targets))
        nodes.append(
            d(
                "server",
                block=[
                    d("listen", f"unix:{front.passthrough_socket}", "proxy_protocol"),
                    # the client's address from the front's header (stream realip)
                    d("set_real_ip_from", "unix:"),
                    d("ssl_preread", "on"),
                    d("proxy_pass", "$portway_sni_target"),
                    d("proxy_timeout", PASSTHROUGH_IDLE_TIMEOUT),
                ],
            )
        )
    return ConfigFile(FRONT_FILE, nodes)


def http_real_ip(front: FrontPlan, real_ip: RealIpSpec | None) -> list[Node]:
    """The http context's realip directives under the front (see the module docstring)."""
    if real_ip is None:
        return [
            Comment("Real client IP: HTTPS arrives from the SNI front with a PROXY header"),
            d("set_real_ip_from", "unix:"),
            d("real_ip_header", "proxy_protocol"),
            *_real_ip_directives(None),
        ]
    return [
        *_real_ip_directives(real_ip),
        Comment("the SNI front sends only trusted proxies' connections to https.sock"),
        d("set_real_ip_from", "unix:"),
    ]


def with_twins(file: ConfigFile, front: FrontPlan | None) -> ConfigFile:
    """`file` with a twin after each HTTPS server block when the front sorts clients
    (FrontPlan.trusted): the same block on `https-direct.sock` only, whose realip reads
    the PROXY header. Any http-context file (hosts of every kind, the default servers,
    whatever else renders servers through Listeners) goes through here; others, and files
    twinned already, are returned as they are."""
    if front is None or not front.trusted or file.served:
        return file
    socket = f"unix:{front.https_socket}"
    if f"unix:{front.direct_socket}" in file.text():
        return file  # twinned already
    nodes: list[Node] = []
    changed = False
    for node in file.nodes:
        nodes.append(node)
        if not (isinstance(node, Directive) and node.name == "server" and node.block):
            continue
        listens = [
            n
            for n in node.block
            if isinstance(n, Directive) and n.name == "listen" and n.args[:1] == (socket,)
        ]
        if not listens:
            continue
        body = [n for n in node.block if not (isinstance(n, Directive) and n.name == "listen")]
        nodes.append(
            d(
                "server",
                block=[
                    Comment("twin: clients that are no trusted proxy (address: PROXY header)"),
                    *(
                        d("listen", f"unix:{front.direct_socket}", *listen.args[1:])
                        for listen in listens
                    ),
                    d("set_real_ip_from", "unix:"),
                    d("real_ip_header", "proxy_protocol"),
                    *body,
                ],
            )
        )
        changed = True
    if not changed:
        return file
    return dataclasses.replace(file, nodes=nodes)
