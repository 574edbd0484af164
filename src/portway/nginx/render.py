"""Render Portway's database state into nginx configuration (as data, see config.py).

Layout of one generation directory (nginx's conf prefix is that directory, so the
relative `include`s below resolve inside it, and a generation can be tested with
`nginx -t -c <gen>/nginx.conf` before it becomes live):

    nginx.conf              main context, http block, status server, stream block
    default.conf            the default servers on the HTTP and HTTPS ports
    hosts/<kind>-<id>.conf  one file per enabled host: proxy-, redirection-, dead-<id>
                            in the http context, stream-<id> in the stream context
                            (errors are attributed by file; see portway.nginx.kinds)

Directives follow the nginx reference (https://nginx.org/en/docs/dirindex.html) and the
defaults Nginx Proxy Manager users know (HSTS value, block-exploits rules, assets cache).
"""

from __future__ import annotations

import copy
import grp
import hashlib
import ipaddress
import os
import pwd
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from portway.access.render import (
    AccessSpec,
    RealIpSpec,
    location_directives,
    server_directives,
)
from portway.conf import PortwayConfig
from portway.core.fields import location_blocks
from portway.nginx.config import Blank, Comment, ConfigFile, Directive, MapEntry, Node, Raw, d

MIME_TYPES = Path("/etc/nginx/mime.types")
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
HSTS_MAX_AGE = 63072000  # two years, NPM's value
STATUS_PATH = "/__portway/generation"
UNIX_SOCKET_PATH_MAX = 107  # bytes of sockaddr_un.sun_path before its NUL (Linux, unix(7))
ADVANCED_MARKER = "# Advanced config (administrator)"  # the comment line before it
DEFAULT_SITE_PAGE = "www/default-site.html"  # in the generation directory
ACME_PREFIX = r"/\.well-known/acme-challenge/"
_ASSET_EXTENSIONS = "css|js|mjs|jpe?g|gif|png|webp|avif|svg|ico|woff2?|ttf|eot|otf|mp4|webm"
# directives nginx accepts only once per level ("... directive is duplicate")
_SINGLE_DIRECTIVES = frozenset(
    {"proxy_ssl_server_name", "proxy_cache", "proxy_cache_key", "expires"}
)
_ASSET_URI = rf"~*\.({_ASSET_EXTENSIONS})$"
# Upstream keep-alive pools (one `upstream` block per distinct target of a host, see
# Renderer._upstream_block). Idle connections each worker keeps per upstream: enough for
# the concurrency one busy host sees per worker; the rest are closed after use.
UPSTREAM_KEEPALIVE = 32
# Below the 5 s idle timeout of common app servers (Node.js, uvicorn, Apache), so nginx
# drops an idle connection before the upstream does and rarely reuses one being closed.
UPSTREAM_KEEPALIVE_TIMEOUT = "4s"
UPSTREAM_KEEPALIVE_REQUESTS = 1000
_DEFAULT_LOCATION = re.compile(r"^(?:(?!#).)*\blocation\s+/\s*\{", re.MULTILINE)

# NPM's "block common exploits" rules: request URIs and query strings that probe for SQL
# injection, file inclusion and shell access are answered 403.
_EXPLOIT_PATTERNS = [
    ("$query_string", r"[a-zA-Z0-9_]=https?://"),
    ("$query_string", r"[a-zA-Z0-9_]=(\.\.//?)+"),
    ("$query_string", r"[a-zA-Z0-9_]=/([a-z0-9_.]//?)+"),
    ("$query_string", r"(union.*select.*\()"),
    ("$query_string", r"(union.*all.*select.*)"),
    ("$query_string", r"(concat.*\()"),
    ("$query_string", r"(base64_encode|base64_decode)\(.*\)"),
    ("$query_string", r"(<|%3C).*script.*(>|%3E)"),
    ("$query_string", r"GLOBALS(=|\[|%[0-9A-Z]{0,2})"),
    ("$query_string", r"_REQUEST(=|\[|%[0-9A-Z]{0,2})"),
    ("$request_uri", r"(\.\./|/etc/passwd|/proc/self/environ)"),
    ("$http_user_agent", r"(libwww-perl|wget|python-requests|nikto|sqlmap|masscan)"),
]


@dataclass(frozen=True)
class Paths:
    """Where Portway keeps nginx's files under the data directory.

    Private keys stay in 0700 directories readable by nginx's master (root) only; the
    directories nginx's workers must read (challenge webroot) are world-traversable.
    """

    data_dir: Path

    @property
    def base(self) -> Path:
        return self.data_dir / "nginx"

    @property
    def generations(self) -> Path:
        return self.base / "generations"

    @property
    def live(self) -> Path:
        """Symlink to the live generation; nginx is started with live/nginx.conf."""
        return self.base / "live"

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def temp(self) -> Path:
        return self.base / "temp"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def error_log(self) -> Path:
        return self.logs / "nginx-error.log"

    def host_log(self, host_key: str, which: str) -> Path:
        """A host's own log: `logs/<kind>-<id>_access.log` or `_error.log` (NPM's names)."""
        return self.logs / f"{host_key}_{which}.log"

    @property
    def pid_file(self) -> Path:
        return self.run / "nginx.pid"

    @property
    def status_socket(self) -> Path:
        return self.run / "status.sock"

    @property
    def tunnels(self) -> Path:
        """The tunnel service's directory: its state file, socket and session journal."""
        return self.data_dir / "tunnels"

    @property
    def tunnel_socket(self) -> Path:
        """Where the tunnel service accepts the WebSocket upgrades nginx hands over."""
        return self.tunnels / "service.sock"

    @property
    def acme_webroot(self) -> Path:
        """Files served at /.well-known/acme-challenge/ on every name (HTTP-01)."""
        return self.data_dir / "acme-challenge"

    @property
    def default_cert_dir(self) -> Path:
        return self.base / "default-cert"

    @property
    def cache(self) -> Path:
        return self.base / "cache"

    @property
    def gate_socket(self) -> Path:
        """The login gate's unix socket (portway.gate_server), in a directory of its own."""
        return self.data_dir / "gate" / "gate.sock"

    @property
    def fastpath_socket(self) -> Path:
        """The fast path's control server (portway.nginx.fastpath), root's only: nginx
        makes its sockets 0666 and the run directory is 0711 (the SNI front's workers
        traverse it), so the socket has a 0700 directory of its own."""
        return self.run / "private" / "fastpath.sock"

    def unix_sockets(self) -> list[Path]:
        """Every unix socket Portway and its nginx listen on under the data directory."""
        return [self.status_socket, self.fastpath_socket, self.tunnel_socket, self.gate_socket]

    def socket_path_problem(self) -> str | None:
        """Why the data directory is too deep for unix sockets, else None.

        A unix socket's path must fit sockaddr_un.sun_path: 108 bytes on Linux including
        the terminating NUL (unix(7)); nginx and Python refuse a longer one at bind().
        """
        longest = max(self.unix_sockets(), key=lambda path: len(os.fsencode(path)))
        size = len(os.fsencode(longest))
        if size <= UNIX_SOCKET_PATH_MAX:
            return None
        return (
            f"PORTWAY_DATA_DIR {self.data_dir} is too long: the unix socket {longest} would "
            f"be {size} bytes, and unix sockets allow at most {UNIX_SOCKET_PATH_MAX}; "
            f"choose a data directory at most {size - UNIX_SOCKET_PATH_MAX} bytes shorter"
        )

    @property
    def access_dir(self) -> Path:
        """Access lists' htpasswd files (hashes only; readable by nginx's workers)."""
        return self.base / "access"

    def htpasswd(self, access_list_id: int) -> Path:
        """The htpasswd file of access list `access_list_id`."""
        return self.access_dir / f"{access_list_id}.htpasswd"


@dataclass(frozen=True)
class Listeners:
    """The address:port strings nginx listens on for plain HTTP and for TLS.

    `hosts`: the addresses alone (`0.0.0.0`, `[::]` or the bind address), for the
    ports streams listen on.
    """

    http: tuple[str, ...]
    https: tuple[str, ...]
    hosts: tuple[str, ...] = ("0.0.0.0",)
    # When the SNI front (portway.nginx.render_front) holds the HTTPS port, the http
    # context's HTTPS servers listen on this unix socket instead, behind the PROXY protocol.
    https_socket: Path | None = None

    def http_listen(self, *params: str) -> list[Directive]:
        """The `listen` lines of a server on the HTTP port (`params`: "default_server")."""
        return [d("listen", address, *params) for address in self.http]

    def https_listen(self, *params: str) -> list[Directive]:
        """The `listen` lines of a server on the HTTPS port, `ssl` and `params` included
        ("http2", "default_server"): the public addresses, or the front's socket.

        Every HTTPS server block (hosts of every kind, the default servers) gets its
        listeners here, so the SNI front moves all of them at once: a server left on the
        public address would clash with the front's, and nginx applies `proxy_protocol`
        to every server of one address anyway.
        """
        if self.https_socket is not None:
            return [d("listen", f"unix:{self.https_socket}", "ssl", *params, "proxy_protocol")]
        return [d("listen", address, "ssl", *params) for address in self.https]

    def stream(self, port: int) -> tuple[str, ...]:
        """The address:port strings a stream on `port` listens on."""
        return tuple(f"{host}:{port}" for host in self.hosts)

    @classmethod
    def from_config(cls, config: PortwayConfig) -> Listeners:
        """Listen addresses: the bind address if set, else all IPv4 (and IPv6 unless disabled)."""
        if config.bind_address:
            host = config.bind_address
            if ":" in host and not host.startswith("["):
                host = f"[{host}]"
            hosts = [host]
        else:
            hosts = (
                ["0.0.0.0"] if config.disable_ipv6 or not socket.has_ipv6 else ["0.0.0.0", "[::]"]
            )
        return cls(
            http=tuple(f"{h}:{config.http_port}" for h in hosts),
            https=tuple(f"{h}:{config.https_port}" for h in hosts),
            hosts=tuple(hosts),
        )


@dataclass(frozen=True)
class CertificateRef:
    """What the renderer needs of a certificate: its id and file paths."""

    id: int
    fullchain: Path
    key: Path


@dataclass(frozen=True)
class LocationSpec:
    path: str
    forward_scheme: str
    forward_host: str
    forward_port: int
    forward_path: str = ""
    advanced_config: str = ""


class SiteSpec(Protocol):
    """What every host kind's spec has (the renderer's shared pieces read only these)."""

    id: int
    domain_names: tuple[str, ...]
    certificate: CertificateRef | None
    ssl_forced: bool
    hsts_enabled: bool
    hsts_subdomains: bool
    http2_support: bool
    block_exploits: bool
    advanced_config: str

    @property
    def key(self) -> str:
        """The host's file key, `<kind>-<id>`."""
        ...


@dataclass(frozen=True)
class ProxyHostSpec:
    """A validated proxy host, decoupled from the ORM so rendering is a pure function."""

    id: int
    domain_names: tuple[str, ...]
    forward_scheme: str
    forward_host: str
    forward_port: int
    certificate: CertificateRef | None = None
    ssl_forced: bool = False
    hsts_enabled: bool = False
    hsts_subdomains: bool = False
    http2_support: bool = False
    block_exploits: bool = False
    caching_enabled: bool = False
    allow_websocket_upgrade: bool = False
    trust_forwarded_proto: bool = False
    cloudflare_only: bool = False
    # the CA Cloudflare's origin-pull client certificates chain to (None: none installed)
    origin_pull_ca: Path | None = None
    advanced_config: str = ""
    locations: tuple[LocationSpec, ...] = ()
    access: AccessSpec | None = None

    @property
    def key(self) -> str:
        return f"proxy-{self.id}"


@dataclass(frozen=True)
class DefaultSite:
    """The default-site setting: value in congratulations|404|444|redirect|html."""

    value: str = "congratulations"
    redirect: str = ""
    html: str = ""


class UpstreamResolver:
    """Decides per upstream name whether nginx can resolve it at load time.

    nginx resolves a literal `proxy_pass http://name` once, at (re)load, and refuses to
    load the whole config if the name does not resolve. Names that do not resolve now
    are rendered through a variable instead, which nginx resolves per request with the
    `resolver` directive, so the host answers 502 until the name exists.

    Args:
        servers: PORTWAY_RESOLVER's "ip[:port]" entries. When given, only names in
            /etc/hosts count as resolvable at load time (nginx's load-time lookup uses the
            system resolver, not these servers); every other name goes through the
            variable and is resolved per request by these servers. `addresses` (the fast
            path's lookup) asks /etc/hosts and then these servers.
        ttl: seconds a result is cached (a full render may ask for thousands of hosts).
    """

    def __init__(self, servers: list[str] | None = None, ttl: float = 30.0) -> None:
        self.servers = servers or []
        self.ttl = ttl
        self._cache: dict[str, tuple[float, bool]] = {}
        self._addresses: dict[str, tuple[float, list[str]]] = {}

    def resolvable(self, name: str) -> bool:
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            pass
        now = time.monotonic()
        cached = self._cache.get(name)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        ok = self._lookup(name)
        self._cache[name] = (now, ok)
        return ok

    def addresses(self, name: str) -> list[str]:
        """The IP addresses of upstream `name` ([] when it does not resolve), IPv4 first:
        what the fast path's balancer connects to (it takes addresses, not names).

        Looked up as `resolvable` does (the system resolver, or /etc/hosts and then the
        PORTWAY_RESOLVER servers), cached for `ttl` seconds.
        """
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            pass
        now = time.monotonic()
        cached = self._addresses.get(name)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        found = self._lookup_addresses(name)
        self._addresses[name] = (now, found)
        return found

    def _lookup_addresses(self, name: str) -> list[str]:
        found: list[str] = []
        if not self.servers or name in _etc_hosts_names():
            try:
                infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError):
                infos = []
            found = [str(info[4][0]) for info in infos]
        else:
            import dns.exception
            import dns.resolver

            resolver = dns.resolver.Resolver(configure=False)
            for server in self.servers:
                host, _, port = (
                    server.strip("[]").rpartition(":")
                    if server.count(":") == 1
                    else (server, "", "")
                )
                resolver.nameservers = [host.strip("[]")]
                resolver.port = int(port) if port else 53
                resolver.lifetime = 2.0
                try:
                    found = [record.address for record in resolver.resolve(name, "A")]
                    break
                except dns.exception.DNSException:
                    continue
        return sorted(dict.fromkeys(found), key=lambda address: ":" in address)

    def _lookup(self, name: str) -> bool:
        if not self.servers:
            try:
                socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
                return True
            except (OSError, UnicodeError):
                return False
        # nginx resolves an `upstream` server name at load with the system resolver
        # (getaddrinfo), never with its `resolver` servers: a name only PORTWAY_RESOLVER
        # knows would fail `nginx -t`, and asking the system's DNS is what the setting
        # exists to avoid. Only /etc/hosts answers the same way for both.
        return name in _etc_hosts_names()


def _etc_hosts_names() -> set[str]:
    names: set[str] = set()
    try:
        for line in Path("/etc/hosts").read_text().splitlines():
            names.update(line.split("#", 1)[0].split()[1:])
    except OSError:
        pass
    return names


def system_resolvers() -> list[str]:
    """Name servers from /etc/resolv.conf, IPv6 ones bracketed, for nginx's `resolver`."""
    servers: list[str] = []
    try:
        text = Path("/etc/resolv.conf").read_text()
    except OSError:
        return servers
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                address = ipaddress.ip_address(parts[1].split("%")[0])
            except ValueError:
                continue
            servers.append(f"[{address}]" if address.version == 6 else str(address))
    return servers


def _upstream_address(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _target(spec: ProxyHostSpec | LocationSpec) -> tuple[str, str, int]:
    """(scheme, forward host, port) of a host's or a custom location's upstream."""
    return spec.forward_scheme, spec.forward_host, spec.forward_port


def upstream_name(host_key: str, scheme: str, forward_host: str, port: int) -> str:
    """The `upstream` block of one target of host `host_key` ("proxy-5").

    Deterministic (the same host and target render the same text, so an unchanged host
    file stays byte-identical across applies) and unique per host and target: the
    scheme is part of it because a pool of TLS connections must not serve plain HTTP.
    A forward host would have to be spelled like one of these names, and resolve, to
    be mistaken for a pool by nginx.
    """
    digest = hashlib.sha256(f"{scheme}://{forward_host}:{port}".encode()).hexdigest()[:12]
    return f"portway_{host_key.replace('-', '_')}_{digest}"


def _worker_user() -> tuple[str, str] | None:
    """The unprivileged account nginx's workers run as when started by root."""
    if os.geteuid() != 0:
        return None
    for user in ("www-data", "nginx", "nobody"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        return user, grp.getgrgid(entry.pw_gid).gr_name
    return None


def worker_group_id() -> int | None:
    """The group id of nginx's workers when they run as another user (Portway is root)."""
    user = _worker_user()
    return grp.getgrnam(user[1]).gr_gid if user else None


class Renderer:
    """Turns host specs and settings into the files of one generation."""

    def __init__(
        self,
        config: PortwayConfig,
        paths: Paths,
        resolver: UpstreamResolver | None = None,
    ) -> None:
        self.config = config
        self.paths = paths
        self.listeners = Listeners.from_config(config)
        self.resolver = resolver or UpstreamResolver(config.resolver.split())

    def with_listeners(self, listeners: Listeners) -> Renderer:
        """A renderer like this one that puts servers on `listeners` (the SNI front's)."""
        other = copy.copy(self)
        other.listeners = listeners
        return other

    @property
    def _https_port_suffix(self) -> str:
        """ ":port" for redirects to HTTPS when clients reach it on a non-standard port."""
        port = self.config.public_https_port
        return "" if port == 443 else f":{port}"

    # ----- main file -------------------------------------------------------------------
    def main(
        self,
        generation: str,
        name_count: int,
        longest_name: int = 0,
        real_ip: RealIpSpec | None = None,
        http_kinds: tuple[str, ...] | None = None,
        stream_kinds: tuple[str, ...] = (),
        stream_includes: tuple[str, ...] = (),
        http_real_ip: list[Node] | None = None,
        fast_main: Iterable[Node] = (),
        fast_http: Iterable[Node] = (),
    ) -> ConfigFile:
        """nginx.conf: process settings, http-wide settings, includes, status server, and
        the stream context when there are streams.

        Args:
            generation: the id the status server answers with once this config is live.
            name_count: how many server names all hosts together have.
            longest_name: length of the longest of them (characters; at most 253).
            real_ip: read the client's address from a header when the connection comes
                from a trusted proxy (portway.access.realip); None keeps the connection's
                address.
            http_kinds: file key prefixes (kinds) whose `hosts/<prefix>-*.conf` go into
                the http context; None: every file in hosts/.
            stream_kinds: prefixes whose files go into a `stream {}` context; with none
                (no stream in this generation) there is no stream context, so a missing
                stream module costs only the streams, never the whole config.
            stream_includes: more files for the stream context (the SNI front's).
            http_real_ip: the http context's realip directives instead of those made
                from `real_ip` (the SNI front adds the PROXY protocol to them).
            fast_main / fast_http: the fast path's main-context and http-context
                directives (portway.nginx.fastpath.Dataplane.main_directives and
                http_directives); empty (the default) renders the reload-only config.
        """
        p = self.paths
        resolvers = self.config.resolver.split() if self.config.resolver else system_resolvers()
        # The names hash must hold every server_name; nginx refuses to start otherwise.
        hash_max = max(1024, 1 << (max(1, name_count * 2) - 1).bit_length())
        http: list[Node] = [
            d("include", MIME_TYPES) if MIME_TYPES.exists() else Blank(),
            d("default_type", "application/octet-stream"),
            d("server_tokens", "off"),
            d("sendfile", "on"),
            d("tcp_nopush", "on"),
            d("keepalive_timeout", "65s"),
            d("client_max_body_size", "0"),
            d("server_names_hash_bucket_size", names_hash_bucket_size(longest_name)),
            d("server_names_hash_max_size", hash_max),
            d("variables_hash_bucket_size", 128),
            d("proxy_headers_hash_bucket_size", 128),
            d(
                "log_format",
                "portway",
                '$remote_addr - $remote_user [$time_local] "$host" "$request" $status '
                '$body_bytes_sent "$http_referer" "$http_user_agent" $request_time',
            ),
            d("access_log", p.logs / "nginx-access.log", "portway"),
            d("client_body_temp_path", p.temp / "client_body"),
            d("proxy_temp_path", p.temp / "proxy"),
            d("fastcgi_temp_path", p.temp / "fastcgi"),
            d("uwsgi_temp_path", p.temp / "uwsgi"),
            d("scgi_temp_path", p.temp / "scgi"),
            d(
                "proxy_cache_path",
                p.cache / "assets",
                "levels=1:2",
                "keys_zone=portway_assets:10m",
                "max_size=1g",
                "inactive=7d",
                "use_temp_path=off",
            ),
            d("ssl_protocols", "TLSv1.2", "TLSv1.3"),
            d("ssl_prefer_server_ciphers", "off"),
            d("ssl_session_cache", "shared:portway_ssl:10m"),
            d("ssl_session_timeout", "1d"),
            d("ssl_session_tickets", "off"),
            # nginx before 1.23.4 offers upstreams TLS 1.3 only when asked to
            d("proxy_ssl_protocols", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"),
            # resume upstream TLS sessions (nginx's default, stated): with keep-alive pools
            # most requests need no handshake at all, and new connections a short one
            d("proxy_ssl_session_reuse", "on"),
            d("proxy_connect_timeout", "10s"),
            d("proxy_read_timeout", "300s"),
            d("proxy_send_timeout", "300s"),
            # "upgrade" only for WebSocket upgrades; otherwise no Connection header, so the
            # upstream connection stays open for the next request (keep-alive pools)
            _map("$http_upgrade", "$portway_connection_upgrade", {"default": "upgrade", "": ""}),
            # trust_forwarded_proto: believe an outer proxy's X-Forwarded-Proto when it is
            # exactly http or https; otherwise fall back to the connection's own scheme.
            _map(
                "$http_x_forwarded_proto",
                "$portway_forwarded_proto",
                {"default": "$scheme", "http": "http", "https": "https"},
            ),
            # Asset caching (hosts with caching_enabled, see Renderer._cache_directives):
            # only these paths use the cache zone ("off" turns proxy_cache off for the rest)
            _map("$uri", "$portway_asset_cache", {"default": "off", _ASSET_URI: "portway_assets"}),
            _map("$uri", "$portway_asset_expires", {"default": "off", _ASSET_URI: "1d"}),
            _map(
                "$upstream_http_cache_control",
                "$portway_shared_response",
                {"default": "0", "~*(public|s-maxage|must-revalidate)": "1"},
            ),
            # 1 (do not store) for the answer to a request with Authorization, unless the
            # upstream marked it shareable
            _map(
                "$http_authorization:$portway_shared_response",
                "$portway_private_response",
                {"default": "0", "~^.+:0$": "1"},
            ),
        ]
        http += _real_ip_directives(real_ip) if http_real_ip is None else http_real_ip
        if resolvers:
            http.append(d("resolver", *resolvers, "valid=30s", "ipv6=off"))
            http.append(d("resolver_timeout", "5s"))
        http += list(fast_http)
        http += [
            Blank(),
            d("include", "default.conf"),
            *(
                [d("include", "hosts/*.conf")]
                if http_kinds is None
                else [d("include", f"hosts/{prefix}-*.conf") for prefix in http_kinds]
            ),
            Blank(),
            Comment("Portway reads the live generation here to know a reload has taken effect"),
            d(
                "server",
                block=[
                    d("listen", f"unix:{p.status_socket}"),
                    d("access_log", "off"),
                    d("location", "=", STATUS_PATH, block=[d("return", 200, generation)]),
                    d("location", "/", block=[d("return", 404)]),
                ],
            ),
        ]
        nodes: list[Node] = [
            Comment(f"Generated by Portway, generation {generation}. Do not edit.")
        ]
        user = _worker_user()
        if user:
            nodes.append(d("user", *user))
        nodes += [
            d("worker_processes", "auto"),
            d("pid", p.pid_file),
            d("error_log", p.error_log, "warn"),
            d("pcre_jit", "on"),
        ]
        if self.config.worker_shutdown_timeout:
            # after a reload, old workers close what is still open (tunnels, WebSockets)
            # after this long instead of staying until the last connection ends
            nodes.append(d("worker_shutdown_timeout", f"{self.config.worker_shutdown_timeout}s"))
        if STREAM_MODULE.exists():
            # Debian builds stream (TCP/UDP forwarding) as a dynamic module
            nodes.append(d("load_module", STREAM_MODULE))
        nodes += list(fast_main)
        nodes += [
            d("events", block=[d("worker_connections", 4096)]),
            d("http", block=http),
        ]
        if stream_kinds or stream_includes:
            nodes.append(self._stream_context(resolvers, stream_kinds, stream_includes))
        return ConfigFile("nginx.conf", nodes)

    @staticmethod
    def _stream_context(
        resolvers: list[str], kinds: tuple[str, ...], includes: tuple[str, ...] = ()
    ) -> Directive:
        """`stream {}`: TCP/UDP forwarding (portway.nginx.render_stream), its TLS
        defaults, and the resolver for forwarding hosts that did not resolve at apply."""
        stream: list[Node] = [
            d("ssl_protocols", "TLSv1.2", "TLSv1.3"),
            d("ssl_prefer_server_ciphers", "off"),
            d("ssl_session_cache", "shared:portway_stream_ssl:10m"),
            d("ssl_session_timeout", "1d"),
            d("proxy_connect_timeout", "10s"),
        ]
        if resolvers:
            stream.append(d("resolver", *resolvers, "valid=30s", "ipv6=off"))
            stream.append(d("resolver_timeout", "5s"))
        stream += [d("include", f"hosts/{prefix}-*.conf") for prefix in kinds]
        stream += [d("include", name) for name in includes]
        return d("stream", block=stream)

    # ----- default servers -------------------------------------------------------------
    def default_servers(self, site: DefaultSite, directory: Path | None = None) -> ConfigFile:
        """Servers that answer names no host claims, on both ports (default_server).

        Unknown or absent SNI gets Portway's own self-signed certificate (never another
        host's), or with the "444" setting the TLS handshake is refused outright.
        `directory` is the generation directory the files of `default_site_files` are
        written to (an HTML page is served from there).
        """
        p = self.paths
        body = self._default_site_location(site, directory or p.live)
        http_server: list[Node] = [*self.listeners.http_listen("default_server")]
        http_server += [
            d("server_name", "_"),
            self._acme_location(),
            body,
        ]
        https_server: list[Node] = [*self.listeners.https_listen("default_server")]
        https_server += [
            d("server_name", "_"),
            d("ssl_certificate", p.default_cert_dir / "cert.pem"),
            d("ssl_certificate_key", p.default_cert_dir / "key.pem"),
        ]
        if site.value == "444":
            https_server.append(d("ssl_reject_handshake", "on"))
        https_server.append(body)
        return ConfigFile(
            "default.conf",
            [
                Comment("Default site: requests for names no host serves"),
                d("server", block=http_server),
                d("server", block=https_server),
            ],
        )

    def default_site_files(self, site: DefaultSite) -> list[ConfigFile]:
        """The files the default site serves: its HTML page, if it shows one.

        The page is a file rather than the text of a `return`: nginx would expand `$`
        variables in that text and limits one parameter to 4,096 bytes, while a file is
        sent as it is, whatever it contains.
        """
        html = _default_site_html(site)
        return [] if html is None else [ConfigFile(DEFAULT_SITE_PAGE, content=html)]

    def _default_site_location(self, site: DefaultSite, directory: Path) -> Directive:
        if site.value == "404":
            inner: list[Node] = [d("return", 404)]
        elif site.value == "444":
            inner = [d("return", 444)]
        elif site.value == "redirect" and site.redirect:
            inner = [d("return", 307, site.redirect)]
        else:
            page = Path(DEFAULT_SITE_PAGE)
            inner = [
                d("root", directory / page.parent),
                d("default_type", "text/html"),
                # every path shows the page, for any method (the static module answers
                # 405 to POST; error_page turns that into the page as a GET)
                d("rewrite", "^", f"/{page.name}", "break"),
                d("error_page", 405, "=200", f"/{page.name}"),
            ]
        return d("location", "/", block=inner)

    def _acme_location(self) -> Directive:
        """HTTP-01 challenge files, matched before any redirect or custom config."""
        return d(
            "location",
            "^~",
            "/.well-known/acme-challenge/",
            block=[
                # reachable through any access list (access rules are not inherited into
                # a location that has its own)
                d("auth_basic", "off"),
                d("auth_request", "off"),
                d("allow", "all"),
                d("root", self.paths.acme_webroot),
                d("default_type", "text/plain"),
                d("try_files", "$uri", "=404"),
            ],
        )

    # ----- proxy hosts -----------------------------------------------------------------
    def proxy_host(self, host: ProxyHostSpec) -> ConfigFile:
        """The server block(s) of one proxy host.

        Everything that must hold for every request of the host (Force SSL, HSTS, asset
        caching, the cache status header) is set at server level, where it reaches every
        location, the administrator's own ones included. Locations Portway writes carry
        no `add_header` of their own: nginx inherits `add_header` from the server only
        into locations that define none (https://nginx.org/r/add_header), so one there
        would silently drop HSTS and the administrator's server-level headers.
        """
        server = self.site_head(host)
        # The administrator's advanced config may set these itself (nginx refuses a
        # directive twice at one level); theirs wins.
        admin_sets = top_level_names(host.advanced_config)
        options: list[Node] = [
            # SNI for HTTPS upstreams (virtual hosting behind them answers "unrecognized
            # name" without it): the forward host (proxy_ssl_name next to each pooled
            # proxy_pass; a name resolved per request is proxy_pass's own host) and, per
            # RFC 6066, nothing for an IP address.
            d("proxy_ssl_server_name", "on"),
        ]
        if host.caching_enabled:
            options += self._cache_directives(host)
        server += [
            node
            for node in options
            if not (isinstance(node, Directive) and node.name in admin_sets & _SINGLE_DIRECTIVES)
        ]
        upstream_var = None
        if not self.resolver.resolvable(host.forward_host):
            upstream_var = "$portway_upstream"
            server.append(
                Comment(f"{host.forward_host} did not resolve at apply time: resolved per request")
            )
            server.append(d("set", upstream_var, host.forward_host))
        claims_root = False
        # targets passed to by address get a keep-alive pool; see _upstream_block
        pooled: dict[str, Directive] = {}
        for index, location in enumerate(host.locations):
            loc_var = None
            if not self.resolver.resolvable(location.forward_host):
                loc_var = f"$portway_upstream_{index}"
                server.append(d("set", loc_var, location.forward_host))
            else:
                pooled.update(self._upstream_block(host.key, _target(location)))
            for block in self._custom_location(host, location, loc_var):
                if block.args in (("/",), ("^~", "/")):
                    claims_root = True
                server.append(block)
        server += self.site_advanced(host)
        if not claims_root_location(host.advanced_config) and not claims_root:
            if upstream_var is None:
                pooled.update(self._upstream_block(host.key, _target(host)))
            server.append(
                d(
                    "location",
                    "/",
                    block=[
                        *self._location_common(host),
                        *self._proxy_pass(host, _target(host), upstream_var),
                    ],
                )
            )
        return ConfigFile(
            f"hosts/{host.key}.conf",
            [
                Comment(f"Proxy host {host.id}: {' '.join(host.domain_names)}"),
                *(pooled[name] for name in sorted(pooled)),
                d("server", block=server),
            ],
            host_key=host.key,
        )

    @staticmethod
    def _upstream_block(host_key: str, target: tuple[str, str, int]) -> dict[str, Directive]:
        """{name: block}: a keep-alive pool for one target (scheme, forward host, port) of
        host `host_key`, named by `upstream_name`.

        Written in the host's own file and named by the host's key, so every host file
        stands alone: two hosts that forward to the same address get two pools (nginx
        refuses two `upstream` blocks of one name, and a shared upstreams file would tie
        one host's apply, preflight and isolation to the others). An idle pool costs a
        few kilobytes per worker. Only used for names that resolve at apply time: the
        per-request resolver path (a variable in proxy_pass) has no pool.
        See https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive
        """
        _, forward_host, port = target
        name = upstream_name(host_key, *target)
        block = [
            # a name resolving to several addresses is balanced over all of them, as
            # proxy_pass to the name itself did
            d("server", f"{_upstream_address(forward_host)}:{port}"),
            d("keepalive", UPSTREAM_KEEPALIVE),
            d("keepalive_requests", UPSTREAM_KEEPALIVE_REQUESTS),
            d("keepalive_timeout", UPSTREAM_KEEPALIVE_TIMEOUT),
        ]
        return {name: d("upstream", name, block=block)}

    # ----- what every host kind shares -------------------------------------------------
    def site_head(self, host: SiteSpec) -> list[Node]:
        """The start of any host kind's server block: listeners, names, certificate, the
        ACME challenge location, block-exploits rules, Force SSL and Portway's headers.

        `host` is any spec with SiteSpec's fields (ProxyHostSpec, RedirectionHostSpec,
        DeadHostSpec); the kind's own directives follow, then `site_advanced`.
        """
        server: list[Node] = [*self.listeners.http_listen()]
        tls = host.certificate is not None
        if tls:
            server += self.listeners.https_listen(*(["http2"] if host.http2_support else []))
        server.append(d("server_name", *host.domain_names))
        # each host's own logs, read on its Logs page (an administrator's advanced config
        # may direct them elsewhere)
        admin_sets = top_level_names(host.advanced_config)
        if "access_log" not in admin_sets:
            server.append(d("access_log", self.paths.host_log(host.key, "access"), "portway"))
        if "error_log" not in admin_sets:
            server.append(d("error_log", self.paths.host_log(host.key, "error"), "warn"))
        if tls:
            assert host.certificate is not None
            server += [
                d("ssl_certificate", host.certificate.fullchain),
                d("ssl_certificate_key", host.certificate.key),
            ]
        # Server-level rewrite-module directives (block-exploits `if`s, Force SSL, an
        # admin's `return` in advanced config) run before any location is chosen; this
        # `last` ends that phase for challenge requests first, so HTTP-01 always reaches
        # the location.
        server.append(d("rewrite", rf"^({ACME_PREFIX}.*)$", "$1", "last"))
        server.append(self._acme_location())
        # access lists and Cloudflare-only: kinds that have them (see SiteSpec)
        access = getattr(host, "access", None)
        if access is not None:
            server += server_directives(access)
        if getattr(host, "cloudflare_only", False):
            server += self._cloudflare_only(host)
        if host.block_exploits:
            server.append(Comment("Block common exploits"))
            for variable, pattern in _EXPLOIT_PATTERNS:
                server.append(d("if", "(", variable, "~*", pattern, ")", block=[d("return", 403)]))
        if tls and host.ssl_forced:
            # Behind a TLS-terminating proxy (Cloudflare Flexible, cloudflared) every request
            # arrives over plain HTTP; redirecting on $scheme alone would loop forever.
            server.append(Comment("Force SSL"))
            server.append(
                d(
                    "if",
                    "(",
                    self._client_scheme(host),
                    "=",
                    "http",
                    ")",
                    block=[d("return", 301, f"https://$host{self._https_port_suffix}$request_uri")],
                )
            )
        server += self._header_directives(host)
        return server

    @staticmethod
    def _cloudflare_only(host: ProxyHostSpec) -> list[Node]:
        """Authenticated Origin Pulls: only a client presenting a certificate from
        Cloudflare's origin-pull CA gets through; anyone else gets a 403 that says why.

        `ssl_verify_client optional_no_ca` rather than `on`: the TLS handshake is judged by the
        server its SNI names, and a request may name another host in its Host header
        (https://nginx.org/r/ssl_verify_client); checking `$ssl_client_verify` per request
        covers both, and plain HTTP too (the variable is empty there). Challenge requests
        were already sent to their location by the rewrite before this (HTTP-01 works).
        Without a CA file nothing can pass: the host fails closed.
        """
        refuse = d(
            "if",
            "(",
            "$ssl_client_verify",
            "!=",
            "SUCCESS",
            ")",
            block=[d("return", 403, "This site is reachable only through Cloudflare.\n")],
        )
        nodes: list[Node] = [Comment("Cloudflare only (Authenticated Origin Pulls)")]
        if host.origin_pull_ca is not None:
            nodes += [
                d("ssl_client_certificate", host.origin_pull_ca),
                # optional_no_ca: a certificate from another CA is not a handshake or 400
                # error but FAILED in $ssl_client_verify, answered with the same 403
                d("ssl_verify_client", "optional_no_ca"),
            ]
        return [*nodes, refuse]

    @staticmethod
    def site_advanced(host: SiteSpec) -> list[Node]:
        """The administrator's advanced config, marked so errors in it are located."""
        if not host.advanced_config.strip():
            return []
        return [Comment(ADVANCED_MARKER[2:]), Raw(host.advanced_config)]

    @staticmethod
    def _client_scheme(host: SiteSpec) -> str:
        """The scheme the client used: an outer proxy's X-Forwarded-Proto when trusted."""
        trusted = getattr(host, "trust_forwarded_proto", False)
        return "$portway_forwarded_proto" if trusted else "$scheme"

    def _header_directives(self, host: SiteSpec) -> list[Node]:
        """The response headers Portway adds for `host` (server level; see proxy_host)."""
        nodes: list[Node] = []
        if host.certificate is not None and host.ssl_forced and host.hsts_enabled:
            value = f"max-age={HSTS_MAX_AGE}; " + (
                "includeSubDomains; preload" if host.hsts_subdomains else "preload"
            )
            nodes.append(d("add_header", "Strict-Transport-Security", value, "always"))
        if getattr(host, "caching_enabled", False):
            # empty (so not sent) for requests the cache is not used for
            nodes.append(d("add_header", "X-Cache-Status", "$upstream_cache_status", "always"))
        return nodes

    def _cache_directives(self, host: ProxyHostSpec) -> list[Node]:
        """Asset caching for every location of the host (maps in `main`).

        The key holds the scheme and host the client asked for (nginx's default key,
        $scheme$proxy_host$request_uri, names the upstream, so two sites behind one
        upstream would share entries) and the upstream. nginx itself never stores a
        response with Set-Cookie, `Cache-Control: private/no-store/no-cache` or `Vary: *`
        (https://nginx.org/r/proxy_cache_valid); a request with Authorization bypasses
        the cache, and its response is stored only when the upstream marks it shareable
        (RFC 9111 section 3.5).
        """
        return [
            Comment("Cache assets"),
            d("proxy_cache", "$portway_asset_cache"),
            d("proxy_cache_key", f"{self._client_scheme(host)}://$host$request_uri $proxy_host"),
            d("proxy_cache_valid", 200, "30m"),
            d("proxy_cache_valid", 404, "1m"),
            d("proxy_cache_bypass", "$http_authorization"),
            d("proxy_no_cache", "$portway_private_response"),
            d("expires", "$portway_asset_expires"),
        ]

    def _custom_location(
        self, host: ProxyHostSpec, location: LocationSpec, variable: str | None
    ) -> list[Directive]:
        """The `location` block(s) of one custom location.

        A prefix path matches whole path segments: `/sub` (and `/sub/`) serve `/sub` and
        `/sub/...`, never `/subway`, as `location = /sub` plus `location /sub/`. A
        forward path replaces the location's path and keeps the slash between them:
        `/sub/a?x=1` with forward path `/other` (or `/other/`) reaches the upstream as
        `/other/a?x=1`. A regex location's forward path is put in front of the URI.
        """
        forward = location.forward_path
        blocks = []
        for modifier, path in location_blocks(location.path):
            if modifier in ("~", "~*"):
                inner = self._location_common(host)
                if forward:
                    inner.append(d("rewrite", "^(.*)$", f"{forward.rstrip('/')}$1", "break"))
                inner += self._location_pass(host, location, variable)
                block = self._with_advanced(host, location, inner)
                blocks.append(d("location", modifier, path, block=block))
            elif modifier == "=":
                blocks.append(self._mapped_location(host, location, variable, path, forward))
            else:
                target = forward.rstrip("/") + "/" if forward else ""
                blocks.append(
                    self._mapped_location(host, location, variable, path, target, modifier)
                )
        return blocks

    def _mapped_location(
        self,
        host: ProxyHostSpec,
        location: LocationSpec,
        variable: str | None,
        matched: str,
        target: str,
        modifier: str = "=",
    ) -> Directive:
        """An exact (`=`) or prefix location whose `matched` part becomes `target` upstream.

        proxy_pass with a URI does the replacement on the undecoded request URI; with a
        variable upstream nginx passes such a URI unchanged, so a rewrite does it instead.
        """
        inner = self._location_common(host)
        if target and variable is not None:
            exact = modifier == "="
            pattern = "^" + re.escape(matched) + ("$" if exact else "(.*)$")
            inner.append(d("rewrite", pattern, target + ("" if exact else "$1"), "break"))
            inner += self._location_pass(host, location, variable)
        else:
            inner += self._location_pass(host, location, variable, target, matched)
        args = [modifier, matched] if modifier else [matched]
        return d("location", *args, block=self._with_advanced(host, location, inner))

    def _location_pass(
        self,
        host: ProxyHostSpec,
        location: LocationSpec,
        variable: str | None,
        uri: str = "",
        matched: str = "/",
    ) -> list[Node]:
        return self._proxy_pass(
            host, _target(location), variable, uri, matched, location.advanced_config
        )

    def _with_advanced(
        self, host: ProxyHostSpec, location: LocationSpec, inner: list[Node]
    ) -> list[Node]:
        """`inner` plus the location's advanced config.

        Its text may hold `add_header`, which would stop the server's headers from being
        inherited, so they are repeated here first: Portway's and the administrator's
        server-level `add_header` lines.
        """
        if not location.advanced_config.strip():
            return inner
        repeated: list[Node] = list(self._header_directives(host))
        repeated += [Raw(line) for line in top_level_directives(host.advanced_config, "add_header")]
        return [*inner, *repeated, Raw(location.advanced_config)]

    def _location_common(self, host: ProxyHostSpec) -> list[Node]:
        proto = self._client_scheme(host)
        nodes: list[Node] = [
            d("proxy_set_header", "Host", "$host"),
            d("proxy_set_header", "X-Real-IP", "$remote_addr"),
            d("proxy_set_header", "X-Forwarded-For", "$portway_forwarded_for"),
            d("proxy_set_header", "X-Forwarded-Proto", proto),
            d("proxy_set_header", "X-Forwarded-Host", "$host"),
            d("proxy_http_version", "1.1"),
            *location_directives(host.access),
        ]
        if host.allow_websocket_upgrade:
            nodes += [
                d("proxy_set_header", "Upgrade", "$http_upgrade"),
                d("proxy_set_header", "Connection", "$portway_connection_upgrade"),
            ]
        else:
            nodes.append(d("proxy_set_header", "Connection", ""))
        return nodes

    @staticmethod
    def _proxy_pass(
        host: ProxyHostSpec,
        target: tuple[str, str, int],
        variable: str | None,
        uri: str = "",
        matched: str = "/",
        location_advanced: str = "",
    ) -> list[Node]:
        """proxy_pass to `target` (scheme, forward host, port) from a location matching
        `matched`, with `uri` replacing that part; `variable` holds a name nginx resolves
        per request (then no keep-alive pool).

        Through a pool, proxy_pass names the `upstream` block, which changes what nginx
        derives from proxy_pass's host: the SNI name and the default `proxy_redirect`.
        Both are stated as they were with the address (an IP address still gets no SNI,
        RFC 6066 section 3), unless the administrator's advanced config of the server
        or of this location sets them (theirs wins; nginx refuses a second
        proxy_ssl_name at one level, and `proxy_redirect off` next to another).
        """
        scheme, forward_host, port = target
        if variable:
            return [d("proxy_pass", f"{scheme}://{variable}:{port}{uri}")]
        address = f"{scheme}://{_upstream_address(forward_host)}:{port}"
        nodes: list[Node] = [d("proxy_pass", f"{scheme}://{upstream_name(host.key, *target)}{uri}")]
        admin_sets = top_level_names(host.advanced_config) | top_level_names(location_advanced)
        if scheme == "https" and "proxy_ssl_name" not in admin_sets:
            nodes.append(d("proxy_ssl_name", _upstream_address(forward_host)))
        if "proxy_redirect" not in admin_sets:
            # nginx's `proxy_redirect default` for proxy_pass to the address
            if uri:
                nodes.append(d("proxy_redirect", f"{address}{uri}", matched))
            else:
                nodes.append(d("proxy_redirect", f"{address}/", "/"))
        return nodes

    def hosts(self, hosts: Iterable[ProxyHostSpec]) -> list[ConfigFile]:
        return [self.proxy_host(host) for host in hosts]


def claims_root_location(advanced_config: str) -> bool:
    """Whether the administrator's text defines `location /` itself (then Portway's own
    `location /` is left out: nginx refuses a duplicate location)."""
    return bool(_DEFAULT_LOCATION.search(advanced_config))


def top_level_statements(text: str) -> list[str]:
    """The simple directives at the top level of nginx text, as written, without `;`.

    Blocks, comments and quoted strings are skipped the way nginx reads them; `text` has
    passed `portway.core.fields.balanced_config`.
    """
    found: list[str] = []
    statement: list[str] = []
    depth = 0
    quote: str | None = None
    escaped = in_comment = False
    for char in text:
        if in_comment:
            in_comment = char != "\n"
            continue
        if quote:
            statement.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char == "#":
            in_comment = True
            continue
        if depth:
            depth += {"{": 1, "}": -1}.get(char, 0)
            continue
        if char == "{":
            depth, statement = 1, []
        elif char == ";":
            written = "".join(statement).strip()
            if written:
                found.append(written)
            statement = []
        elif char == "}":
            statement = []
        else:
            if char in "\"'":
                quote = char
            statement.append(char)
    return found


def top_level_directives(text: str, name: str) -> list[str]:
    """The top-level `name` directives of nginx text, as written (with `;`).

    Used to repeat an administrator's server-level `add_header` lines in a location that
    defines its own.
    """
    return [f"{s};" for s in top_level_statements(text) if s.split(maxsplit=1)[0] == name]


def top_level_names(text: str) -> set[str]:
    """Names of the directives set at the top level of nginx text."""
    return {statement.split(maxsplit=1)[0] for statement in top_level_statements(text)}


def names_hash_bucket_size(longest_name: int) -> int:
    """server_names_hash_bucket_size that holds a server name of `longest_name` characters.

    nginx stores each name in a bucket as a pointer, a 2-byte length and the name,
    aligned to a pointer, and ends the bucket with one more pointer; a name that does
    not fit makes nginx refuse the whole config ("could not build server_names_hash").
    nginx rounds the size up to the CPU cache line itself; 64-byte steps, at least 256.
    See ngx_hash.c (NGX_HASH_ELT_SIZE) and
    https://nginx.org/en/docs/http/server_names.html#optimization
    """
    pointer = 8
    element = -(-(pointer + 2 + longest_name) // pointer) * pointer
    needed = element + pointer
    return max(256, -(-needed // 64) * 64)


def _default_site_html(site: DefaultSite) -> str | None:
    if site.value == "html" and site.html:
        return site.html
    if site.value in ("404", "444") or (site.value == "redirect" and site.redirect):
        return None
    return CONGRATULATIONS_HTML


def _real_ip_directives(real_ip: RealIpSpec | None) -> list[Node]:
    """realip (https://nginx.org/en/docs/http/ngx_http_realip_module.html) and the
    X-Forwarded-For upstreams get: with a trusted header on, just the real client (the
    chain the proxies sent is theirs to log); otherwise nginx's usual append."""
    if real_ip is None:
        return [
            _map(
                "$remote_addr", "$portway_forwarded_for", {"default": "$proxy_add_x_forwarded_for"}
            )
        ]
    nodes: list[Node] = [Comment("Real client IP: trusted proxies and the header they set")]
    nodes += [d("set_real_ip_from", cidr) for cidr in real_ip.trusted]
    nodes += [
        d("real_ip_header", real_ip.header),
        d("real_ip_recursive", "on"),
        _map("$remote_addr", "$portway_forwarded_for", {"default": "$remote_addr"}),
    ]
    return nodes


def _map(source: str, target: str, entries: dict[str, str]) -> Directive:
    return d("map", source, target, block=[MapEntry(k, v) for k, v in entries.items()])


CONGRATULATIONS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Portway</title>
<style>body{font-family:system-ui,sans-serif;background:#f5f7fb;color:#1d273b;display:flex;
align-items:center;justify-content:center;height:100vh;margin:0}main{text-align:center}
h1{font-weight:600}</style></head>
<body><main><h1>Congratulations!</h1><p>Portway is running. No site is configured for this
address yet.</p></main></body></html>"""
